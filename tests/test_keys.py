"""API keys with scopes (``qa.keys``).

What these tests pin: the keys file format (comments, blank lines, notes, several scopes; every
malformed line refused with its line number and never its hash); the scope semantics (read, write
implies read, admin only admin, ``*``, plain ``QA_API_KEYS`` keys hold everything); matching presented
keys as the API receives them; reloading a changed file, keeping the last good keys when it breaks or
goes missing, refusing a bad file at the first load; ``add_key`` storing only the hash; and ring()
under threads while the file changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import pytest

import qa.keys
from qa.files import write_durably
from qa.keys import (
    ALL_SCOPES,
    KeyRing,
    KeysFile,
    KeysFileError,
    Scope,
    add_key,
    allows,
    format_scope,
    key_line,
    needed_scope,
    parse_keys_file,
    parse_scope,
)

TEST_HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")
SECRET_HEX = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"  # sha256("secret")
EXPECTED = "expected read:<collection>, write:<collection> or admin"
NAME_RULE = "'*' or a name matching [a-z0-9][a-z0-9_-]{0,63}"


def scopes(*texts: str) -> frozenset[Scope]:
    return frozenset(parse_scope(text) for text in texts)


def test_a_good_file_parses_comments_blanks_notes_and_several_scopes() -> None:
    text = (
        "\ufeff# keys for the demo\n"
        "\n"
        f"sha256:{TEST_HEX} read:default  # the widget\n"
        "   \t\n"
        f"  sha256:{SECRET_HEX}\tread:* write:docs admin read:*#not-a-note-field-start\r\n"
        "    # an indented comment\n"
    )
    with pytest.raises(KeysFileError, match="^line 5: scope"):  # '#' only starts a note at a field's start
        parse_keys_file(text)
    entries = parse_keys_file(text.replace("read:*#not-a-note-field-start", "#note"))
    assert entries == (
        (bytes.fromhex(TEST_HEX), scopes("read:default")),
        (bytes.fromhex(SECRET_HEX), scopes("read:*", "write:docs", "admin")),
    )


def test_the_module_docstring_example_parses_to_the_keys_it_names() -> None:
    """Docs tested against the code: the example lines are a valid file for the keys 'test' and 'secret'."""
    example = "\n".join(line for line in (qa.keys.__doc__ or "").splitlines() if line.startswith("    "))
    ring = KeyRing.of(example, [])
    assert ring.scopes_of("test") == scopes("read:default")
    assert ring.scopes_of("secret") == scopes("read:*", "write:docs", "admin")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("qa_plainkey read:docs", "a line must start with sha256:<64 lowercase hex digits>"),
        (f"sha256:{TEST_HEX.upper()} read:docs", "a line must start with sha256:<64 lowercase hex digits>"),
        (f"sha256:{TEST_HEX[:-1]} read:docs", "a line must start with sha256:<64 lowercase hex digits>"),
        (f"{TEST_HEX} read:docs", "a line must start with sha256:<64 lowercase hex digits>"),
        (f"sha512:{TEST_HEX} read:docs", "a line must start with sha256:<64 lowercase hex digits>"),
        (f"sha256:{TEST_HEX}", "the key has no scopes"),
        (f"sha256:{TEST_HEX} # read:docs is in the note", "the key has no scopes"),
        (f"sha256:{TEST_HEX} delete:docs", f"unknown scope 'delete:docs': {EXPECTED}"),
        (f"sha256:{TEST_HEX} read", f"unknown scope 'read': {EXPECTED}"),
        (f"sha256:{TEST_HEX} admin:docs", f"unknown scope 'admin:docs': {EXPECTED}"),
        (f"sha256:{TEST_HEX} read:Docs", f"scope 'read:Docs': read needs a collection: {NAME_RULE}"),
        (f"sha256:{TEST_HEX} write:", f"scope 'write:': write needs a collection: {NAME_RULE}"),
        (f"sha256:{TEST_HEX} read:docs sha256:{TEST_HEX}", f"unknown scope (not shown): {EXPECTED}"),
        (f"sha256:{TEST_HEX} qa_pastedkey:x", f"unknown scope (not shown): {EXPECTED}"),
        (f"sha256:{SECRET_HEX} read:docs", "the same key is already on line 2"),
    ],
)
def test_a_malformed_line_is_refused_with_its_number_and_without_its_hash(line: str, message: str) -> None:
    text = f"# keys\nsha256:{SECRET_HEX} admin\n{line}\nsha256:{'0' * 64} read:*\n"
    with pytest.raises(KeysFileError) as caught:
        parse_keys_file(text)
    assert str(caught.value) == f"line 3: {message}"
    for secret in (TEST_HEX, TEST_HEX.upper(), SECRET_HEX, "qa_plainkey", "qa_pastedkey"):
        assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("held", "action", "collection", "allowed"),
    [
        (("read:docs",), "read", "docs", True),
        (("read:docs",), "read", "other", False),
        (("read:docs",), "write", "docs", False),
        (("read:docs",), "admin", None, False),
        (("read:*",), "read", "docs", True),
        (("read:*",), "read", "*", True),
        (("read:*",), "write", "docs", False),
        (("write:docs",), "write", "docs", True),
        (("write:docs",), "read", "docs", True),
        (("write:docs",), "read", "other", False),
        (("write:docs",), "write", "other", False),
        (("write:docs",), "read", "*", False),
        (("write:*",), "write", "anything", True),
        (("write:*",), "read", "anything", True),
        (("write:*",), "admin", None, False),
        (("admin",), "admin", None, True),
        (("admin",), "admin", "docs", True),
        (("admin",), "read", "default", False),
        (("admin",), "write", "default", False),
        (("read:a", "write:b"), "write", "a", False),
        (("read:a", "write:b"), "read", "b", True),
        ((), "read", "default", False),
    ],
)
def test_scope_semantics(held: tuple[str, ...], action: qa.keys.Action, collection: str | None, allowed: bool) -> None:
    assert allows(scopes(*held), action, collection) is allowed


@pytest.mark.parametrize(("action", "collection"), [("read", "default"), ("write", "docs"), ("admin", None)])
def test_a_plain_key_from_qa_api_keys_holds_every_scope(action: qa.keys.Action, collection: str | None) -> None:
    ring = KeyRing.of(f"sha256:{TEST_HEX} read:docs\n", ["plain-key", ""])
    held = ring.scopes_of("plain-key")
    assert held == ALL_SCOPES == scopes("read:*", "write:*", "admin")
    assert allows(held, action, collection)


def test_read_or_write_without_a_collection_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="^read needs a collection$"):
        allows(ALL_SCOPES, "read", None)


def test_unknown_and_empty_keys_have_no_scopes() -> None:
    ring = KeyRing.of(f"sha256:{TEST_HEX} read:docs\n", [])
    assert ring.scopes_of("test") == scopes("read:docs")
    assert ring.scopes_of("Test") is None
    assert ring.scopes_of("test ") is None
    assert ring.scopes_of("") is None


def test_a_non_ascii_key_matches_as_the_header_delivers_it() -> None:
    """Headers arrive decoded as latin-1: the UTF-8 key 'clé' arrives as 'clÃ©' and must still match."""
    key = "clé"
    ring = KeyRing.of(key_line(key, ["write:docs"]) + "\n", [])
    assert ring.scopes_of(key.encode("utf-8").decode("latin-1")) == scopes("write:docs")


def test_a_key_both_in_the_file_and_plain_holds_the_union() -> None:
    ring = KeyRing.of(f"sha256:{TEST_HEX} read:docs\n", ["test"])
    assert ring.scopes_of("test") == ALL_SCOPES | scopes("read:docs")


def test_empty_means_no_key_at_all() -> None:
    assert KeyRing.of(None, []).empty
    assert KeyRing.of("# nobody yet\n\n", ["", ""]).empty
    assert not KeyRing.of(None, ["k"]).empty
    assert not KeyRing.of(f"sha256:{TEST_HEX} admin", []).empty


@pytest.mark.parametrize(
    ("action", "collection", "text"),
    [("read", "docs", "read:docs"), ("write", "*", "write:*"), ("admin", None, "admin")],
)
def test_needed_scope_and_format_scope_write_the_file_syntax(
    action: qa.keys.Action, collection: str | None, text: str
) -> None:
    assert needed_scope(action, collection) == text
    assert format_scope(parse_scope(text)) == text
    assert parse_scope(text) == Scope(action, collection)


def test_key_line_stores_the_hash_deduplicates_scopes_and_appends_the_note() -> None:
    assert key_line("test", ["read:docs", Scope("admin", None), "read:docs"], note="ci") == (
        f"sha256:{TEST_HEX} read:docs admin  # ci"
    )
    assert key_line("test", ["read:*"]) == f"sha256:{TEST_HEX} read:*"
    with pytest.raises(ValueError, match="^a key needs at least one scope$"):
        key_line("test", [])
    with pytest.raises(ValueError, match="^a note must fit on one line$"):
        key_line("test", ["admin"], note="two\nlines")


def write(path: Path, text: str) -> None:
    write_durably(path, text.encode("utf-8"))


def test_the_ring_follows_the_file_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    write(path, f"sha256:{TEST_HEX} read:docs\n")
    keys = KeysFile(path, ["plain"], interval=0)
    assert keys.ring().scopes_of("test") == scopes("read:docs")
    write(path, f"sha256:{TEST_HEX} write:docs\nsha256:{SECRET_HEX} admin\n")
    assert keys.ring().scopes_of("test") == scopes("write:docs")
    assert keys.ring().scopes_of("secret") == scopes("admin")
    assert keys.ring().scopes_of("plain") == ALL_SCOPES


def test_the_file_is_checked_at_most_once_per_interval(tmp_path: Path) -> None:
    now = [100.0]
    path = tmp_path / "keys"
    write(path, f"sha256:{TEST_HEX} read:docs\n")
    keys = KeysFile(path, [], interval=1.0, clock=lambda: now[0])
    write(path, f"sha256:{TEST_HEX} write:docs\n")
    now[0] = 100.9
    assert keys.ring().scopes_of("test") == scopes("read:docs")
    now[0] = 101.0
    assert keys.ring().scopes_of("test") == scopes("write:docs")


def test_a_broken_or_deleted_file_keeps_the_last_good_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys"
    write(path, f"sha256:{TEST_HEX} read:docs\n")
    keys = KeysFile(path, [], interval=0)
    good = keys.ring()
    with caplog.at_level(logging.WARNING, logger="qa.keys"):
        write(path, f"sha256:{SECRET_HEX} read:docs\nsha256:{TEST_HEX} bogus:x\n")
        assert keys.ring() is good
        assert keys.ring() is good
        path.unlink()
        assert keys.ring() is good
    assert [record.getMessage() for record in caplog.records] == [
        f"keys file not reloaded, the previous keys stay in use: {path}: line 2: unknown scope 'bogus:x': {EXPECTED}",
        "keys file not reloaded, the previous keys stay in use: "
        f"the keys file {path} does not exist: create it, or unset QA_KEYS_FILE",
    ]  # one warning per change, and no hash in either
    write(path, f"sha256:{SECRET_HEX} admin\n")
    assert keys.ring().scopes_of("secret") == scopes("admin")
    assert keys.ring().scopes_of("test") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "the keys file {path} does not exist: create it, or unset QA_KEYS_FILE"),
        (b"\xff\xfe not text", "the keys file {path} is not UTF-8 text"),
        (f"sha256:{TEST_HEX}\n".encode(), "{path}: line 1: the key has no scopes"),
    ],
)
def test_a_missing_or_malformed_file_at_the_first_load_is_refused(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "keys"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KeysFileError) as caught:
        KeysFile(path, ["plain"])
    assert str(caught.value) == message.format(path=path)


def test_without_a_keys_file_only_the_plain_keys_count() -> None:
    keys = KeysFile(None, ["plain"], interval=0)
    assert keys.ring() == KeyRing.of(None, ["plain"])
    assert keys.ring().scopes_of("plain") == ALL_SCOPES


def test_add_key_shows_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    first = add_key(path, ["read:docs", "write:docs"], note="ci runner")
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    second = add_key(path, [Scope("admin", None)])
    text = path.read_text(encoding="utf-8")
    assert first.startswith("qa_") and len(first) == 46 and first != second
    assert text == (
        f"sha256:{hashlib.sha256(first.encode()).hexdigest()} read:docs write:docs  # ci runner\n"
        f"sha256:{hashlib.sha256(second.encode()).hexdigest()} admin\n"
    )
    assert first not in text and second not in text
    assert os.stat(path).st_mode & 0o777 == 0o640
    ring = KeysFile(path, []).ring()
    assert ring.scopes_of(first) == scopes("read:docs", "write:docs")
    assert ring.scopes_of(second) == scopes("admin")


def test_add_key_refuses_to_append_to_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"sha256:{TEST_HEX} read:docs", encoding="utf-8")  # no final newline: add_key adds one
    add_key(path, ["read:*"])
    assert path.read_text(encoding="utf-8").count("\n") == 2
    path.write_text("not a key line\n", encoding="utf-8")
    with pytest.raises(KeysFileError) as caught:
        add_key(path, ["admin"])
    assert str(caught.value) == (
        f"{path}: line 1: a line must start with sha256:<64 lowercase hex digits>; fix it before adding a key"
    )
    assert path.read_text(encoding="utf-8") == "not a key line\n"


def test_ring_is_safe_while_the_file_changes_under_threads(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    text_a, text_b = f"sha256:{TEST_HEX} read:docs\n", f"sha256:{TEST_HEX} read:docs write:docs\n"
    ring_a, ring_b = KeyRing.of(text_a, ["plain"]), KeyRing.of(text_b, ["plain"])
    write(path, text_a)
    keys = KeysFile(path, ["plain"], interval=0)
    seen: list[KeyRing] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                seen.append(keys.ring())
        except BaseException as exc:  # noqa: BLE001  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(40):
        write(path, text_b if i % 2 == 0 else text_a)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen and all(ring in (ring_a, ring_b) for ring in seen)
    assert keys.ring() == ring_a
