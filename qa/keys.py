"""API keys with scopes, read from a keys file that is reloaded without a restart.

A scope is ``read:<collection>``, ``write:<collection>`` (either with ``*`` for every collection) or
``admin``. A write scope also grants read on the same collections; ``admin`` (create and delete
collections) grants nothing on documents: give ``read:*``/``write:*`` too where a key needs them.
Plain keys from ``QA_API_KEYS`` keep their meaning and hold every scope (``read:*``, ``write:*``, ``admin``).

Keys file format (UTF-8, path in ``QA_KEYS_FILE``): one key per line, ``<hash> <scope> [<scope> ...]``,
where ``<hash>`` is ``sha256:`` and the 64 lowercase hex digits of the sha256 of the key's UTF-8 bytes.
Keys are stored only as hashes. A line starting with ``#`` is a comment, blank lines are ignored, and a
field starting with ``#`` starts a note that runs to the end of the line. Collection names match
``[a-z0-9][a-z0-9_-]{0,63}``. Example (the hashes of the keys ``test`` and ``secret``)::

    # who holds what
    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 read:default  # the widget
    sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b read:* write:docs admin

A malformed line is a ``KeysFileError`` naming the line and the rule; messages never repeat a hash or
a key. Create lines with ``add_key`` (or ``key_line``), which shows the key once and stores its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from qa.errors import QAError
from qa.files import write_durably

logger = logging.getLogger(__name__)

Action = Literal["read", "write", "admin"]
ACTIONS: tuple[Action, ...] = get_args(Action)
COLLECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
HASH_FIELD = re.compile(r"sha256:[0-9a-f]{64}")
# A scope field is repeated in an error only when it cannot be a pasted key or hash: a short lowercase
# word, then optionally ':' and a short name (new_key's keys start with 'qa_', hashes with 'sha256:').
ECHO_SAFE = re.compile(r"[a-z]{1,16}(:[A-Za-z0-9_*.-]{0,64})?")
KEY_PREFIX = "qa_"  # marks our keys in logs and secret scanners; the 32 random bytes after it carry the strength


class KeysFileError(QAError):
    """The keys file is missing, unreadable or malformed (at startup, the server refuses to start)."""

    status = 503


@dataclass(frozen=True, slots=True)
class Scope:
    """What a key may do: ``action`` on ``collection`` (a name or ``"*"``; ``None`` for admin)."""

    action: Action
    collection: str | None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if self.action == "admin" and self.collection is not None:
            raise ValueError("admin takes no collection")
        if self.action != "admin" and (
            self.collection is None or (self.collection != "*" and not COLLECTION_NAME.fullmatch(self.collection))
        ):
            raise ValueError(f"{self.action} needs a collection: '*' or a name matching {COLLECTION_NAME.pattern}")


ALL_SCOPES = frozenset({Scope("read", "*"), Scope("write", "*"), Scope("admin", None)})
KeyEntry = tuple[bytes, frozenset[Scope]]


def parse_scope(text: str) -> Scope:
    """Read ``read:<c>``, ``write:<c>`` (``<c>`` a collection name or ``*``) or ``admin``.

    Raises:
        ValueError: an unknown scope (named in the message when it cannot be a key) or a bad collection.
    """
    action, colon, collection = text.partition(":")
    shown = f"'{text}'" if ECHO_SAFE.fullmatch(text) else "(not shown)"
    if action not in ACTIONS or (action == "admin") == bool(colon):
        raise ValueError(f"unknown scope {shown}: expected read:<collection>, write:<collection> or admin")
    try:
        return Scope(action, collection if colon else None)
    except ValueError as exc:
        raise ValueError(f"scope {shown}: {exc}") from None


def format_scope(scope: Scope) -> str:
    """The text of a scope, as the keys file writes it (``parse_scope``'s inverse)."""
    return scope.action if scope.collection is None else f"{scope.action}:{scope.collection}"


def parse_keys_file(text: str) -> tuple[KeyEntry, ...]:
    """The (sha256 digest, scopes) pairs of a keys file's text, in file order.

    Raises:
        KeysFileError: the first malformed line, by number (1-based), without its hash.
    """
    entries: list[KeyEntry] = []
    seen: dict[bytes, int] = {}
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        fields = line.split()
        notes = [i for i, field in enumerate(fields) if field.startswith("#")]
        fields = fields[: notes[0]] if notes else fields
        if not fields:
            continue
        if not HASH_FIELD.fullmatch(fields[0]):
            raise KeysFileError(f"line {number}: a line must start with sha256:<64 lowercase hex digits>")
        if len(fields) == 1:
            raise KeysFileError(f"line {number}: the key has no scopes")
        digest = bytes.fromhex(fields[0].removeprefix("sha256:"))
        if digest in seen:
            raise KeysFileError(f"line {number}: the same key is already on line {seen[digest]}")
        try:
            scopes = frozenset(parse_scope(field) for field in fields[1:])
        except ValueError as exc:
            raise KeysFileError(f"line {number}: {exc}") from None
        seen[digest] = number
        entries.append((digest, scopes))
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Every accepted key, as sha256 digests with their scopes."""

    entries: tuple[KeyEntry, ...]

    @classmethod
    def of(cls, file_text: str | None, plain_keys: Sequence[str]) -> KeyRing:
        """A ring from a keys file's text (or none) and plain keys, which hold every scope.

        Raises:
            KeysFileError: the file text is malformed.
        """
        parsed = parse_keys_file(file_text) if file_text is not None else ()
        plain = tuple((hashlib.sha256(key.encode("utf-8")).digest(), ALL_SCOPES) for key in plain_keys if key)
        return cls(parsed + plain)

    @property
    def empty(self) -> bool:
        """True when no key at all is accepted."""
        return not self.entries

    def scopes_of(self, token: str) -> frozenset[Scope] | None:
        """The scopes of a presented key, or None when no entry matches.

        The token is encoded back to its wire bytes (headers arrive decoded as latin-1) and its digest
        is compared with every entry's, without stopping at a match, so the time taken does not tell
        where in the ring a key sits. A key listed twice holds the union of its scopes.
        """
        if not token:
            return None
        digest = hashlib.sha256(token.encode("latin-1", "replace")).digest()
        found: frozenset[Scope] | None = None
        for entry_digest, scopes in self.entries:
            if hmac.compare_digest(digest, entry_digest):
                found = scopes if found is None else found | scopes
        return found


def allows(scopes: frozenset[Scope], action: Action, collection: str | None) -> bool:
    """Whether ``scopes`` permit ``action`` on ``collection`` (ignored for admin).

    Read is granted by ``read`` or ``write`` on the collection or on ``*``; write by ``write`` only;
    admin by ``admin`` only. ``collection="*"`` (every collection) needs a ``*`` scope.

    Raises:
        ValueError: read or write without a collection.
    """
    if action == "admin":
        return Scope("admin", None) in scopes
    if collection is None:
        raise ValueError(f"{action} needs a collection")
    granting = ("read", "write") if action == "read" else ("write",)
    return any(s.action in granting and s.collection in (collection, "*") for s in scopes)


def needed_scope(action: Action, collection: str | None) -> str:
    """The scope to name in a 403, e.g. ``write:docs`` or ``admin``."""
    return "admin" if action == "admin" else f"{action}:{collection}"


def new_key() -> str:
    """A fresh random key: ``qa_`` and 32 random bytes, URL-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_line(key: str, scopes: Iterable[Scope | str], note: str | None = None) -> str:
    """The keys file line for ``key`` (its hash, never the key), without a newline.

    Raises:
        ValueError: no scopes, an unknown scope, or a note with a line break.
    """
    texts = [format_scope(s if isinstance(s, Scope) else parse_scope(s)) for s in scopes]
    if not texts:
        raise ValueError("a key needs at least one scope")
    if note is not None and ("\n" in note or "\r" in note):
        raise ValueError("a note must fit on one line")
    line = " ".join([f"sha256:{hashlib.sha256(key.encode('utf-8')).hexdigest()}", *dict.fromkeys(texts)])
    return f"{line}  # {note}" if note else line


def add_key(path: Path, scopes: Iterable[Scope | str], note: str | None = None) -> str:
    """Append a line for a fresh key to the keys file and return the key: the only time it is shown.

    The whole file is rewritten atomically and durably; a new file gets mode 0o600, an existing one
    keeps its mode (set right after the swap: in between, a reader could only see hashes of random keys).
    Two processes adding at once can lose one line: run one ``add_key`` at a time.

    Raises:
        KeysFileError: the existing file cannot be read or is malformed (it is left unchanged).
        ValueError: as ``key_line``.
    """
    key = new_key()
    line = key_line(key, scopes, note)
    try:
        old, mode = path.read_text(encoding="utf-8"), path.stat().st_mode & 0o777
    except FileNotFoundError:
        old, mode = "", 0o600
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"cannot read the keys file {path}: {exc}") from None
    try:
        parse_keys_file(old)
    except KeysFileError as exc:
        raise KeysFileError(f"{path}: {exc}; fix it before adding a key") from None
    prefix = old if not old or old.endswith("\n") else old + "\n"
    write_durably(path, f"{prefix}{line}\n".encode())
    os.chmod(path, mode)
    return key


Signature = tuple[int, int, int, int]  # (st_dev, st_ino, st_mtime_ns, st_size): a replaced or edited file differs


class KeysFile:
    """The key ring of a keys file plus plain keys, re-read when the file changes.

    Args:
        path: the keys file, or None for plain keys only.
        plain_keys: keys from ``QA_API_KEYS`` (every scope).
        interval: seconds between two checks of the file's stat (0: every call).
        clock: monotonic seconds (tests may pass a fake).

    Raises:
        KeysFileError: the file is missing, unreadable or malformed at the first load.
    """

    def __init__(
        self,
        path: Path | None,
        plain_keys: Sequence[str],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.plain_keys, self.interval, self._clock = path, tuple(plain_keys), interval, clock
        self._lock = threading.Lock()
        self._checked = clock()
        self._signature: Signature | None
        if path is None:
            self._signature, self._ring = None, KeyRing.of(None, self.plain_keys)
        else:
            self._signature, self._ring = self._load(path)

    def _load(self, path: Path) -> tuple[Signature, KeyRing]:
        try:
            with path.open("rb") as handle:
                st = os.fstat(handle.fileno())  # the stat of the bytes read, even if the file is replaced meanwhile
                data = handle.read()
            text = data.decode("utf-8")
        except FileNotFoundError:
            raise KeysFileError(f"the keys file {path} does not exist: create it, or unset QA_KEYS_FILE") from None
        except OSError as exc:
            raise KeysFileError(f"cannot read the keys file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise KeysFileError(f"the keys file {path} is not UTF-8 text") from None
        try:
            ring = KeyRing.of(text, self.plain_keys)
        except KeysFileError as exc:
            raise KeysFileError(f"{path}: {exc}") from None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size), ring

    def ring(self) -> KeyRing:
        """The current ring; re-reads the file when its stat changed (checked at most every ``interval`` s).

        A file that went missing or malformed keeps the last good ring serving, with one warning per change.
        """
        path = self.path
        if path is None or self._clock() - self._checked < self.interval:
            return self._ring
        with self._lock:
            if self._clock() - self._checked < self.interval:
                return self._ring
            self._checked = self._clock()
            try:
                st = os.stat(path)
                signature: Signature | None = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                signature = None
            if signature != self._signature:
                try:
                    self._signature, self._ring = self._load(path)
                except KeysFileError as exc:
                    self._signature = signature  # warn once per change, not on every check
                    logger.warning("keys file not reloaded, the previous keys stay in use: %s", exc)
            return self._ring
