"""JSON text from outside (a filter, a line of answers, a gold file), decoded or refused with the reason.

Besides malformed text, ``json.loads`` fails on text nested deeper than the interpreter's recursion limit
(RecursionError) and on a whole number of over 4,300 digits, which Python will not convert (a plain
ValueError): neither is a JSONDecodeError, so each caller used to catch its own subset of the three.
"""

from __future__ import annotations

import json
from typing import Any


def decode(text: str, subject: str) -> Any:
    """``text`` decoded as JSON.

    Raises:
        ValueError: "<subject> is not valid JSON (<what> at character <n>)", "<subject> is nested too deeply
            to parse" or "<subject> holds a number too long to read".
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{subject} is nested too deeply to parse") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{subject} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except ValueError:  # a number of over 4,300 digits, which Python will not convert
        raise ValueError(f"{subject} holds a number too long to read") from None
