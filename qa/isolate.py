"""Parse an untrusted file in a child process that is killed at a deadline.

A hostile PDF of a few kilobytes can keep pypdf busy for minutes, and a thread
cannot be stopped, so :func:`parse_isolated` runs :func:`qa.ingest.parse_document`
in a child process. It guarantees that:

* it returns the same ``Document`` as the in-process call (an equal dataclass,
  blocks included), or raises ``CorpusError``; it never hangs past the deadline
  (plus the time to kill the child and, for a large result, to read it);
* when it returns or raises, the child has exited and been reaped, and both ends
  of the pipe are closed: no parse outlives the call;
* the result comes back as UTF-8 JSON (``send_bytes``/``recv_bytes``), never
  pickle, so the parent unpickles nothing the child wrote;
* calls from several threads at once are independent (each has its own process
  and pipe).

Exception mapping (HTTP status in brackets):

* CorpusError raised in the child   [400]  re-raised with the same message
* ParseTimeout                      [422]  the deadline passed; the child was killed
* any other failure of the child    [400]  CorpusError "<id>: the file could not be parsed"
  (an unexpected exception, a signal, the out-of-memory killer)

The "forkserver" start method is used: each child forks from a small server
process that never imported torch or started threads, not from the serving
process, and that already imported the parsers. It also keeps a child from
inheriting the pipe ends of other threads' calls, so the death of a child is
seen as end-of-file on its own pipe. As with "spawn", each child first makes the
program's main script or ``python -m`` module its ``__mp_main__``, so a program that
calls this must keep its work under ``if __name__ == "__main__":`` (the ``qa``
console script does); the fork server imports it once (``main_preload``), so a
child does not import it again.
"""

from __future__ import annotations

import ast
import json
import logging
import multiprocessing
import sys
from functools import cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path
from typing import Any

from qa.errors import CorpusError
from qa.ingest import parse_document
from qa.metadata import MetaValue
from qa.types import Document, document_from_record, document_record

logger = logging.getLogger(__name__)

# Imported once by the fork server, so each child starts with the parsers loaded. qa.ingest imports pypdf
# only when a PDF is read; without "pypdf" here every PDF child imports it again (0.2 s a PDF, measured).
# A child runs a main script with runpy.run_path, which imports pkgutil (2.5 ms a child).
PRELOAD_MODULES = ("qa.ingest", "qa.isolate", "pypdf", "runpy", "pkgutil")
# A child that has sent its result only has to exit: wait this long before terminating it anyway.
EXIT_GRACE_S = 2.0
# After SIGTERM, wait this long for the child to exit before SIGKILL.
TERMINATE_GRACE_S = 0.2


class ParseTimeout(CorpusError):
    """Parsing a file took longer than its deadline; the child process was killed."""

    status = 422


def main_preload() -> list[str]:
    """What the fork server imports so that a child's run of the program's main module is cheap.

    Each child first runs the program's main module again as ``__mp_main__``. Its imports are what cost:
    under ``qa serve`` each parse imported ``qa.cli`` again (about 47 ms a parse, 16 ms with this). So the fork
    server imports them once, and each child finds them loaded:

    * a ``python -m NAME`` module: NAME itself (a ``X.__main__`` module is left out, as children skip it);
    * a script (the ``qa`` console script): the modules its top level imports that this process has
      imported already (so none can fail). The fork server's own ``"__main__"`` preload does not reach a
      script on Python 3.11: it looks for a key that ``multiprocessing.spawn`` does not write.
    """
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name:
        return [] if name == "__main__" or name.endswith(".__main__") else [name]
    path = getattr(main, "__file__", None)
    try:
        tree = ast.parse(Path(path).read_bytes()) if path else None
    except (OSError, SyntaxError, ValueError):
        tree = None
    imported = [
        module
        for node in (tree.body if tree else [])
        for module in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
            else []
        )
    ]
    return [module for module in dict.fromkeys(imported) if module in sys.modules]


@cache
def _context() -> ForkServerContext:
    """The forkserver context, with the parsers and the main module preloaded (set once)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(main_preload() + list(PRELOAD_MODULES))
    return context


def parse_isolated(
    doc_id: str, data: bytes, *, title: str | None = None, metadata: dict[str, MetaValue] | None = None, seconds: float
) -> Document:
    """Parse a file like ``parse_document``, in a child process killed after ``seconds``.

    The deadline counts from the child's start. The first call in a process
    also starts the fork server (about half a second), which the deadline does
    not count.

    Args:
        doc_id: The document id (its relative path); its suffix picks the parser.
        data: The file's content.
        title: A title to use instead of the first heading.
        metadata: Checked metadata, set over the file's front matter.
        seconds: How long the parse may take.

    Returns:
        The parsed document, equal to ``parse_document(doc_id, data, title=title, metadata=metadata)``.

    Raises:
        ParseTimeout: If the parse did not finish in ``seconds``.
        CorpusError: If ``parse_document`` raised it (same message), or the child
            failed in any other way.
        ValueError: If ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"seconds ({seconds}) must be positive")
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    with receiver:
        with sender:  # the child holds the only write end once started, so its death reads as end-of-file
            process = context.Process(target=_parse_in_child, args=(sender, doc_id, data, title, metadata), daemon=True)
            process.start()
        payload: bytes | None = None
        try:
            payload = _receive(receiver, seconds)
        finally:
            exitcode = _reap(process, grace=EXIT_GRACE_S if payload else 0.0)
    if payload is None:
        raise ParseTimeout(f"{doc_id}: parsing took longer than {seconds:g} s; the file is too complex to index here")
    if not payload:
        logger.warning("the child process parsing %r ended without a result (exit code %s)", doc_id, exitcode)
        raise CorpusError(_unparsable(doc_id))
    return _read_reply(payload, doc_id)


def _receive(receiver: Connection, seconds: float) -> bytes | None:
    """The child's message; None if none came within ``seconds``, empty if the child closed the pipe without one.

    A message that has started is read to its end before the child is joined: a child writing a large result
    blocks until it is read, so joining it first would deadlock.
    """
    try:
        if not receiver.poll(seconds):
            return None
        return receiver.recv_bytes()
    except (EOFError, OSError):
        return b""


def _reap(process: ForkServerProcess, *, grace: float) -> int | None:
    """Wait ``grace`` seconds for the child to exit, then terminate it, then kill it; join it and free it.

    Returns:
        Its exit code (negative: the signal that ended it).
    """
    process.join(grace)
    if process.exitcode is None:
        process.terminate()
        process.join(TERMINATE_GRACE_S)
    if process.exitcode is None:
        process.kill()
        process.join()
    exitcode = process.exitcode
    process.close()
    return exitcode


def _parse_in_child(
    sender: Connection, doc_id: str, data: bytes, title: str | None, metadata: dict[str, MetaValue] | None
) -> None:
    """The child's work: parse, and send the document or the CorpusError's message as JSON.

    Any other exception propagates: the child exits with a traceback on stderr and no message, which the
    parent reports as a file that could not be parsed.
    """
    with sender:
        try:
            reply: dict[str, Any] = {
                "document": document_record(parse_document(doc_id, data, title=title, metadata=metadata))
            }
        except CorpusError as exc:
            reply = {"error": str(exc)}
        sender.send_bytes(_encode(reply))


def _encode(reply: dict[str, Any]) -> bytes:
    # ingest replaces lone surrogates in extracted text, but a caller's title may hold one: surrogatepass
    # carries any str through exactly, and decoding with it in the parent gives back the same code points.
    return json.dumps(reply, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _read_reply(payload: bytes, doc_id: str) -> Document:
    """The document in the child's message, or its CorpusError raised here."""
    try:
        reply = json.loads(payload.decode("utf-8", "surrogatepass"))
        if "error" in reply:
            message = reply["error"]
        else:
            return document_from_record(reply["document"])
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("the child process parsing %r sent a malformed result: %s", doc_id, exc)
        raise CorpusError(_unparsable(doc_id)) from exc
    raise CorpusError(message)


def _unparsable(doc_id: str) -> str:
    return f"{doc_id}: the file could not be parsed"
