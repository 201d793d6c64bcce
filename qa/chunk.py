"""Split a document into passages that keep their section path and exact offsets.

* Prose: the sentences of one paragraph, packed into passages of at most
  ``max_chars``; a sentence is never split (unless it is unbroken text over
  ``sentences.HARD_MAX_CHARS``) and a passage crosses a paragraph only where
  the paragraph introduces what follows (``_run_on``): "The mission of the
  Department is to" keeps "(A) prevent ...", "(B) reduce ..." with it, and a
  caption such as "(1) In general" keeps the paragraph it heads.
* Lists: consecutive items under one heading, packed the same way; each item
  (or each sentence of a long item) is an answer unit, its bullet left out.
* Tables: each row is its own passage; the header row goes into ``context``
  so the row is found by the column names, while the quote covers the row only.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Literal

from qa.defaults import DEFAULT_MAX_CHARS
from qa.sentences import introduces, is_caption, split_sentences, starts_list_item
from qa.structure import BULLET, section_paths
from qa.types import Block, Document, Passage, Span

# Passages and units as this version cuts them: an index built by another version is built again.
CHUNKER_VERSION = 5

# Used with match(text, pos): anchored at pos, so no "^" (which would only match at offset 0).


def passage_id(doc_id: str, start: int, end: int, text: str) -> str:
    """Content address of a passage: the same text at the same place keeps its id."""
    digest = hashlib.sha256(f"{doc_id}\0{start}\0{end}\0{text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def _item_units(text: str, block: Block) -> list[Span]:
    bullet = BULLET.match(text, block.start, block.end)
    start = bullet.end() if bullet else block.start
    return split_sentences(text, start, block.end)


def _pack(units: Sequence[Span], max_chars: int) -> Iterator[list[Span]]:
    """Group consecutive units so that each group spans at most ``max_chars`` (one unit always fits)."""
    group: list[Span] = []
    for unit in units:
        if group and unit.end - group[0].start > max_chars:
            yield group
            group = []
        group.append(unit)
    if group:
        yield group


def _block_units(text: str, block: Block) -> list[Span]:
    return _item_units(text, block) if block.kind == "list_item" else split_sentences(text, block.start, block.end)


def _run_on(
    text: str,
    group: list[Span],
    path: tuple[str, ...],
    blocks: Sequence[tuple[Block, tuple[str, ...]]],
    start: int,
    max_chars: int,
) -> int:
    """Keep a paragraph that introduces what follows with it ("The mission of the Department is to").

    When the last unit of ``group`` introduces (``qa.sentences.introduces``:
    it stops mid-sentence, or is a caption such as "(1) In general"), the group
    takes in the next block of its section ``path``; then the blocks after it
    while the last one taken introduces, or while they go on a list ("(A) ...",
    "- ...") that a caption does not end. Blocks are taken whole, while the
    group spans at most ``max_chars``. ``group`` grows in place.

    Returns:
        How many of the blocks from ``blocks[start]`` on the group took.
    """
    last = group[-1]
    if not introduces(text[last.start : last.end]):
        return 0
    wants, in_list, taken = True, False, 0
    for block, block_path in itertools.islice(blocks, start, None):
        block_text = text[block.start : block.end]
        listed = block.kind == "list_item" or starts_list_item(block_text)
        goes_on = in_list and listed and not is_caption(block_text)
        if block.kind not in ("paragraph", "list_item") or block_path != path or not (wants or goes_on):
            break
        units = _block_units(text, block)
        if not units or units[-1].end - group[0].start > max_chars:
            break
        group.extend(units)
        taken += 1
        wants, in_list = introduces(text[units[-1].start : units[-1].end]), listed
    return taken


def _make(
    doc: Document,
    path: tuple[str, ...],
    units: Sequence[Span],
    kind: Literal["prose", "list", "table_row"],
    context: str = "",
) -> Passage:
    start, end = units[0].start, units[-1].end
    text = doc.text[start:end]
    return Passage(
        id=passage_id(doc.id, start, end, text),
        doc_id=doc.id,
        section_path=path,
        start=start,
        end=end,
        text=text,
        kind=kind,
        context=context,
        units=tuple(units),
    )


def chunk_document(doc: Document, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Passage]:
    """Split a parsed document into passages.

    Args:
        doc: A document whose ``blocks`` were found by a parser.
        max_chars: Upper bound on a passage's length, unless one sentence is longer.

    Returns:
        Passages in document order; ``doc.text[p.start:p.end] == p.text`` for each.

    Raises:
        ValueError: If ``max_chars`` is not positive.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars ({max_chars}) must be at least 1")
    passages: list[Passage] = []
    paths = section_paths(doc.text, doc.blocks)
    header = ""
    list_units: list[Span] = []
    list_path: tuple[str, ...] = ()

    def flush_list() -> None:
        for group in _pack(list_units, max_chars):
            passages.append(_make(doc, list_path, group, "list"))
        list_units.clear()

    blocks = list(zip(doc.blocks, paths, strict=True))
    skip = 0
    for i, (block, path) in enumerate(blocks):
        if skip:
            skip -= 1
            continue
        if block.kind == "list_item" and (not list_units or path == list_path):
            list_path = path
            list_units.extend(_item_units(doc.text, block))
            continue
        flush_list()
        if block.kind == "list_item":
            list_path = path
            list_units.extend(_item_units(doc.text, block))
        elif block.kind == "paragraph":
            groups = list(_pack(split_sentences(doc.text, block.start, block.end), max_chars))
            if groups:
                skip = _run_on(doc.text, groups[-1], path, blocks, i + 1, max_chars)
            passages.extend(_make(doc, path, g, "prose") for g in groups)
        elif block.kind == "table_header":
            header = doc.text[block.start : block.end]
        elif block.kind == "table_row":
            passages.append(_make(doc, path, [Span(block.start, block.end)], "table_row", header))
        if block.kind not in ("table_header", "table_row"):
            header = ""
    flush_list()
    return passages


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def linearize_row(header: str, row: str) -> str:
    """A table row as "column: value" pairs, so the row reads like a sentence.

    Example:
        >>> linearize_row("Metric | Value |", "Fusion Centers | ~80 |")
        'Metric: Fusion Centers; Value: ~80'
    """
    names, values = _cells(header), _cells(row)
    if not header or len(names) != len(values):
        return row
    return "; ".join(f"{name}: {value}" if name else value for name, value in zip(names, values, strict=True))


def unit_texts(passage: Passage) -> list[str]:
    """What is embedded for each answer unit: its text, a table row with its header."""
    if passage.kind == "table_row":
        return [linearize_row(passage.context, passage.text)]
    return [passage.text[u.start - passage.start : u.end - passage.start] for u in passage.units]


def retrieval_text(passage: Passage) -> str:
    """What is embedded and indexed for a passage: its section path, then its text."""
    body = unit_texts(passage)[0] if passage.kind == "table_row" else passage.text
    path = " > ".join(passage.section_path)
    return f"{path}\n{body}" if path else body
