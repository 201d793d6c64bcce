"""A document's metadata: the fields a user may set, their types and limits.

Five fields have a fixed meaning and type; up to ``MAX_EXTRA_FIELDS`` more may hold a
string, a number or a boolean::

    {"title": "Retention policy", "source_url": "https://example.org/retention",
     "tags": ["policy", "hr"], "date": "2024-05-01", "language": "en", "year": 2024, "draft": false}

Metadata comes with an upload, from a sidecar file (``NAME.meta.json`` beside ``NAME``) or from
Markdown front matter at ``qa index`` time. It is stored with the document in the index, returned
with it and in every citation, and filtered on (``qa.filters``). ``clean_metadata`` is the one
gate: it checks every rule and returns the canonical form (tags a tuple, dates normalised), so
that what is stored compares and filters the same whichever way it came in.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from qa.errors import QueryError

MetaValue = str | int | float | bool | tuple[str, ...]
Metadata = Mapping[str, MetaValue]
FieldType = Literal["string", "number", "boolean", "date", "tags"]

# The fields with a fixed meaning, and their types.
RESERVED: dict[str, FieldType] = {
    "title": "string",
    "source_url": "string",
    "tags": "tags",
    "date": "date",
    "language": "string",
}
# Filters may also name the document's id; it is never part of the metadata itself.
DOCUMENT_ID = "document_id"
MAX_EXTRA_FIELDS = 32
MAX_TAGS = 64
MAX_STRING_CHARS = 1000
MAX_URL_CHARS = 2048
MAX_TITLE_CHARS = 500
# The whole metadata of one document, as compact JSON.
MAX_METADATA_BYTES = 16 * 1024
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
# BCP 47 as it is written in practice: "en", "pt-BR", "zh-Hant-TW".
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


class MetadataError(QueryError):
    """Metadata breaks a rule: the message names the field (422)."""


def _plain_text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise MetadataError(f"metadata.{name} must be a string")
    if not value or len(value) > limit:
        raise MetadataError(f"metadata.{name} must be 1 to {limit} characters")
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise MetadataError(f"metadata.{name} contains a control character or invalid Unicode")
    return value


def clean_date(value: object, name: str = "date") -> str:
    """An ISO 8601 date (``2024-05-01``) or date-time, in the canonical form compared by filters.

    A date stays ``YYYY-MM-DD``; a date-time with an offset becomes UTC, ``YYYY-MM-DDTHH:MM:SS[.ffffff]``,
    one without stays as written (seconds added). Strings in this form sort in time order.

    Raises:
        MetadataError: If it is not an ISO 8601 date or date-time.
    """
    if not isinstance(value, str) or len(value) > 40:
        raise MetadataError(f"{name} must be an ISO 8601 date such as '2024-05-01'")
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value).isoformat()
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MetadataError(f"{name} must be an ISO 8601 date such as '2024-05-01'") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat()


def _url(value: object) -> str:
    text = _plain_text("source_url", value, MAX_URL_CHARS)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetadataError("metadata.source_url must be an http or https URL")
    return text


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise MetadataError("metadata.tags must be a list of strings")
    if len(value) > MAX_TAGS:
        raise MetadataError(f"metadata.tags holds {len(value)} tags; the limit is {MAX_TAGS}")
    tags = tuple(_plain_text("tags", tag, 100) for tag in value)
    return tuple(dict.fromkeys(tags))  # repeats dropped, order kept


# A whole number beyond this is not kept exactly by a JSON number in a browser (nor by a float).
MAX_EXACT_INT = 2**53


def number_problem(value: int | float) -> str | None:
    """What is wrong with a number as a metadata value or a filter's operand, or None: it must be finite,
    and a whole number within ±2**53 (``MAX_EXACT_INT``)."""
    if isinstance(value, int):
        return "is a number beyond ±2**53" if abs(value) > MAX_EXACT_INT else None
    return None if math.isfinite(value) else "must be a finite number"


def _extra(name: str, value: object) -> MetaValue:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if (problem := number_problem(value)) is not None:
            raise MetadataError(f"metadata.{name} {problem}")
        return value
    if isinstance(value, str):
        return _plain_text(name, value, MAX_STRING_CHARS)
    raise MetadataError(f"metadata.{name} must be a string, a number or a boolean")


def clean_metadata(data: object) -> dict[str, MetaValue]:
    """Check metadata against every rule and return its canonical form.

    Raises:
        MetadataError: Naming the first field that breaks a rule.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise MetadataError("metadata must be a JSON object")
    extras = [name for name in data if name not in RESERVED]
    if len(extras) > MAX_EXTRA_FIELDS:
        raise MetadataError(f"metadata has {len(extras)} fields besides {', '.join(RESERVED)}; the limit is 32")
    out: dict[str, MetaValue] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
            raise MetadataError("metadata field names must match [a-z][a-z0-9_]{0,63}")
        if name == DOCUMENT_ID:
            raise MetadataError("metadata.document_id is not a metadata field: the id is given apart")
        if name == "title":
            out[name] = " ".join(_plain_text(name, value, MAX_TITLE_CHARS).split())
        elif name == "source_url":
            out[name] = _url(value)
        elif name == "tags":
            out[name] = _tags(value)
        elif name == "date":
            out[name] = clean_date(value, "metadata.date")
        elif name == "language":
            if not isinstance(value, str) or not LANGUAGE.fullmatch(value) or len(value) > 35:
                raise MetadataError("metadata.language must be a language tag such as 'en' or 'pt-BR'")
            out[name] = value
        else:
            out[name] = _extra(name, value)
    if len(metadata_json(out).encode("utf-8")) > MAX_METADATA_BYTES:
        raise MetadataError(f"metadata is over {MAX_METADATA_BYTES} bytes as JSON")
    return out


def metadata_json(metadata: Metadata) -> str:
    """Compact JSON of metadata (tags as a list), keys sorted: how its size is counted."""
    return json.dumps(metadata_record(metadata), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def metadata_record(metadata: Metadata) -> dict[str, str | int | float | bool | list[str]]:
    """Metadata as JSON-ready data (tags as a list)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in metadata.items()}


def metadata_from_record(record: Mapping[str, object]) -> dict[str, MetaValue]:
    """Metadata as :func:`metadata_record` wrote it (stored, so already checked): lists back to tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}  # type: ignore[misc]


def field_type(name: str, value: MetaValue) -> FieldType:
    """The type a filter compares a field's value as."""
    if name in RESERVED:
        return RESERVED[name]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"
