"""Find the structure of plain text and Markdown: headings, paragraphs, lists, tables.

The parser works line by line on the exact text, so every block's offsets
point into the unchanged source. Markdown ``#`` headings give their own
level. Plain-text headings are inferred: a short line that starts with a
capital letter or a digit, has no final punctuation and is not part of a
wrapped paragraph. Their nesting is inferred too:

* a numbered heading ("2.1 Scope") takes its depth from its number;
* a heading followed directly by another heading is a parent, and the
  headings after it are its children;
* a child run ends at the first sibling whose body has another shape (a
  table or a list after prose children, say), which goes back up a level;
* more than MAX_HEADING_RUN such lines in a row are prose (a list of names,
  verse), not headings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from qa.sentences import ends_in_abbreviation, split_sentences
from qa.types import Block, BlockKind

# A heading is a label, not a sentence: at most this many words and characters.
MAX_HEADING_WORDS = 12
MAX_HEADING_CHARS = 100
# The first line may be a longer title.
MAX_TITLE_CHARS = 200
# More inferred headings than this in a row (nothing but blank lines between) are short lines of prose.
MAX_HEADING_RUN = 6

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
# The bullet or number that opens a list item's line ("- ", "• ", "2. ", "3) "), with its spaces. Legal
# enumerations inside text ("(A) ", "(iv) ") are another notion: qa.sentences' enumeration markers.
BULLET = re.compile(r"[ \t]*(?:[-*+•‣◦▪]|\d{1,3}[.)])[ \t]+")
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$")
# With a pipe, GitHub takes one dash a column ("|--|--|", "| :-: | :-: |", "-- | --").
_PIPED_SEPARATOR = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$")
# The underline of a setext heading ("Title" over "=====" is level 1, over "-----" level 2).
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# A Markdown thematic break ("***", "* * *", "___"): no text ("---" is also a table's rule).
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
# A Markdown link reference definition ("[guide]: https://example.com/guide"): a target, not text.
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]^][^\]]*\]:[ \t]*\S+(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*$")
# Markdown's inline marks inside a heading show only their text: a link or image ("## [Install](#install)"
# reads "Install"), strong or emphasised words, code spans ("**Bold** `code`" reads "Bold code").
_INLINE_MARKS = (
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)([^_]+?)(?<=\S)_(?![\w_])"), r"\1\2"),
    (re.compile(r"`([^`]+)`"), r"\1"),
)
# Small words a heading does not end on, but a line of wrapped prose often does ("... was then sent to");
# capitalised, they may ("Section A", "Plan B").
_OPEN_WORDS = frozenset(
    "a an the of to and or nor for with by from as that which whose was were is are be been than its their our "
    "your his".split()
)
# A line holding a sentence's end after this many words is wrapped prose ("The agency was created in 2003.
# The"), not a numbered heading ("Chapter 1. Scope").
_PROSE_WORDS = 4
_NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?[ \t]+\S")
# A subsection's number ("1.1 Purpose", "2.3. Scope") and a top section's ("2. Leave Policy").
_SUBSECTION = re.compile(r"^[ \t]*\d{1,3}(?:\.\d{1,3})+\.?[ \t]+[A-Z]")
_TOP_NUMBER = re.compile(r"^[ \t]*\d{1,3}\.[ \t]+")
_HEADING_START = re.compile(r"^[A-Z0-9§(\"“'‘\u00C0-\u024F]")
_TERMINAL = ".,;:!?"


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int  # excludes the line break
    text: str


def split_lines(text: str) -> list[_Line]:
    """Split text into lines with offsets, keeping ``\\r\\n``, ``\\r`` and ``\\n`` out of them."""
    lines: list[_Line] = []
    for match in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n|$)", text):
        raw = match.group(0)
        if not raw:
            continue
        body = raw.rstrip("\r\n")
        lines.append(_Line(match.start(), match.start() + len(body), body))
    return lines


def _trimmed(line: _Line) -> tuple[int, int]:
    lead = len(line.text) - len(line.text.lstrip())
    return line.start + lead, line.start + len(line.text.rstrip())


def is_table_line(text: str) -> bool:
    """A pipe-table row: at least two cell separators."""
    return text.count("|") >= 2


def is_list_line(text: str) -> bool:
    """Whether a line is a list item: a bullet or number, then text."""
    bullet = BULLET.match(text)
    return bullet is not None and bullet.end() < len(text) and not text[bullet.end()].isspace()


def is_table_rule(text: str) -> bool:
    """Whether ``text`` is the ``|---|---|`` rule under a Markdown table's header (whitespace around allowed);
    with a pipe, a column's rule may be one dash (``|--|--|``, ``-- | --``)."""
    stripped = text.strip()
    return bool(_TABLE_SEPARATOR.match(stripped) or ("|" in stripped and _PIPED_SEPARATOR.match(stripped)))


def looks_like_heading(text: str, *, first: bool = False) -> bool:
    """Whether a plain-text line reads as a heading rather than prose.

    Args:
        text: The line, without its line break.
        first: Whether it is the document's first non-blank line (a title may be longer).
    """
    stripped = text.strip()
    if not stripped or stripped[-1] in _TERMINAL or not _HEADING_START.match(stripped):
        return False
    if is_table_line(stripped) or is_list_line(stripped) or not re.search(r"[A-Za-z]", stripped):
        return False
    limit = MAX_TITLE_CHARS if first else MAX_HEADING_CHARS
    words = stripped.split()
    if words[-1] in _OPEN_WORDS or _holds_sentence_end(stripped):
        return False  # a line of wrapped prose, cut after "to" or after a sentence's end
    return len(stripped) <= limit and (first or len(words) <= MAX_HEADING_WORDS)


def _holds_sentence_end(text: str) -> bool:
    """Whether a sentence ends inside ``text`` after at least _PROSE_WORDS words (``qa.sentences``)."""
    spans = split_sentences(text)
    return len(spans) > 1 and len(text[spans[0].start : spans[0].end].split()) >= _PROSE_WORDS


def setext_level(line: str, underline: str) -> int:
    """The level of a setext heading: 1 when ``underline`` is ``===`` under a line of text, 2 for ``---``,
    0 when it is no such heading."""
    marks = _SETEXT.match(underline)
    if not marks or not line.strip() or len(line) - len(line.lstrip(" ")) > 3:
        return 0
    return 1 if marks.group(1)[0] == "=" else 2


def _classify(lines: list[_Line], markdown: bool) -> list[BlockKind | None]:
    """Give each line a kind; None for blank lines, table separators, setext underlines, and Markdown's
    thematic breaks, comments and link reference definitions."""
    kinds: list[BlockKind | None] = []
    last_text = max((i for i, line in enumerate(lines) if line.text.strip()), default=-1)
    seen_text = False
    fence = ""  # the marker of an open Markdown code fence: its lines are code, not structure
    comment = False  # inside a Markdown <!-- comment --> that spans lines
    in_table = False  # under a header whose rule has a pipe: a row needs only one ("Gadget | 7 dollars")
    # Plain text numbered as an outline ("1.1 Purpose" somewhere): its "2. Leave Policy" lines are headings.
    outline = not markdown and any(_SUBSECTION.match(line.text) for line in lines)
    for i, line in enumerate(lines):
        text = line.text.strip()
        following = lines[i + 1].text.strip() if i + 1 < len(lines) else ""
        ruled = is_table_rule(following) and "-" in following
        setext = _setext_under(lines, i, kinds)
        kind: BlockKind | None
        if markdown and (fence or text.startswith(("```", "~~~"))):
            closing = bool(fence) and text.startswith(fence)
            fence = "" if closing else (fence or text[:3])
            kind = "paragraph" if text else None
        elif markdown and (comment or text.startswith("<!--")):
            comment = "-->" not in (text if comment else text[4:])
            kind = None
        elif setext or (markdown and (_THEMATIC_BREAK.match(line.text) or _LINK_DEFINITION.match(line.text))):
            kind = None
        elif (
            setext_level(line.text, lines[i + 1].text if i + 1 < len(lines) else "")
            and not is_table_line(text)
            and not is_list_line(line.text)
            and (markdown or looks_like_heading(line.text, first=not seen_text))
        ):
            kind = "heading"
        elif not text or is_table_rule(text):
            kind = None
            in_table = in_table and bool(text)
        elif _MD_HEADING.match(text) and len(line.text.expandtabs(4)) - len(line.text.expandtabs(4).lstrip()) < 4:
            kind = "heading"  # indented four spaces or more, a "#" line is code (CommonMark), not a heading
        elif is_table_line(text) or ("|" in text and (in_table or (ruled and "|" in following))):
            kind = "table_header" if ruled else "table_row"
            in_table = in_table or (ruled and "|" in following)
        elif outline and i < last_text and _is_outline_heading(line.text):
            kind = "heading"
        elif is_list_line(line.text):
            kind = "list_item"
        elif not markdown and _is_plain_heading(lines, i, kinds, first=not seen_text, last_text=last_text):
            kind = "heading"
        else:
            kind = "paragraph"
        seen_text = seen_text or bool(text)
        in_table = in_table and kind in ("table_header", "table_row", None)
        kinds.append(kind)
    return kinds


def _is_outline_heading(text: str) -> bool:
    """Whether a numbered line ("2. Leave Policy") reads as a heading of an outline, not a list item: a
    number, then a short capitalised label without final punctuation."""
    number = _TOP_NUMBER.match(text)
    return number is not None and looks_like_heading(text[number.end() :])


def _setext_under(lines: list[_Line], i: int, kinds: list[BlockKind | None]) -> bool:
    """Whether line ``i`` is the underline of the setext heading just above it."""
    return i > 0 and kinds[-1] == "heading" and bool(setext_level(lines[i - 1].text, lines[i].text))


def _demote_heading_runs(kinds: list[BlockKind | None]) -> list[BlockKind | None]:
    """Inferred headings in a run longer than MAX_HEADING_RUN (blank lines aside) become prose.

    Six short unpunctuated lines in a row are a list of names, an address or
    verse, not six nested headings: read as headings they would be left out of
    every passage, and a long run would nest thousands deep.
    """
    out = list(kinds)
    run: list[int] = []
    for i, kind in enumerate([*kinds, "paragraph"]):
        if kind == "heading":
            run.append(i)
        elif kind is not None:
            if len(run) > MAX_HEADING_RUN:
                for j in run:
                    out[j] = "paragraph"
            run = []
    return out


def _is_plain_heading(
    lines: list[_Line], i: int, kinds: list[BlockKind | None], *, first: bool, last_text: int
) -> bool:
    if not looks_like_heading(lines[i].text, first=first):
        return False
    if i >= last_text:
        return False  # a heading introduces something: the last line with text is no heading
    following = lines[i + 1].text.lstrip() if i + 1 < len(lines) else ""
    if following[:1].islower():
        return False  # the next line continues this one: a wrapped paragraph
    previous = lines[i - 1].text.strip() if i > 0 else ""
    # A wrapped paragraph: the line before is prose that has not ended its sentence.
    return not (previous and kinds[-1] == "paragraph" and previous[-1] not in _TERMINAL)


def _raw_blocks(text: str, markdown: bool) -> list[Block]:
    """Blocks with heading levels still unset (0) for plain-text headings."""
    lines = split_lines(text)
    kinds = _classify(lines, markdown)
    if not markdown:
        kinds = _demote_heading_runs(kinds)
    blocks: list[Block] = []
    open_para: tuple[int, int] | None = None
    for i, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        start, end = _trimmed(line)
        if kind == "paragraph" and open_para is not None and (markdown or _goes_on(text, open_para[1])):
            open_para = (open_para[0], end)  # a soft-wrapped line continues its paragraph
            continue
        if kind == "paragraph" and blocks and blocks[-1].kind == "list_item" and kinds[i - 1] == "list_item" \
                and _continues_item(text, blocks[-1], line, markdown):  # fmt: skip
            blocks[-1] = Block("list_item", blocks[-1].start, end)  # the item's text wraps onto this line
            kinds[i] = "list_item"
            continue
        if open_para is not None:
            blocks.append(Block("paragraph", *open_para))
            open_para = None
        if kind == "paragraph":
            open_para = (start, end)
        elif kind == "heading":
            underline = lines[i + 1].text if i + 1 < len(lines) else ""
            blocks.append(_heading_block(text, start, end, setext_level(line.text, underline) if markdown else 0))
        elif kind is not None:
            blocks.append(Block(kind, start, end))
    if open_para is not None:
        blocks.append(Block("paragraph", *open_para))
    return blocks


def _goes_on(text: str, end: int) -> bool:
    """Whether a plain-text paragraph ending at ``end`` goes on over the next line: it has not ended its
    sentence (no final punctuation, or a period after an abbreviation such as "Dr.")."""
    return text[end - 1] not in _TERMINAL or (text[end - 1] == "." and ends_in_abbreviation(text, end - 1))


def _continues_item(text: str, item: Block, line: _Line, markdown: bool) -> bool:
    """Whether a line of prose right under a list item (no blank line between) wraps the item's text: in
    Markdown always (a lazy continuation line), in plain text when it is indented past the item's bullet or
    goes on with a small letter a sentence the item has not ended."""
    if markdown:
        return True
    bullet_at = item.start - text.rfind("\n", 0, item.start) - 1
    indent = len(line.text) - len(line.text.lstrip())
    return indent > bullet_at or (line.text.lstrip()[:1].islower() and _goes_on(text, item.end))


def _heading_block(text: str, start: int, end: int, setext: int = 0) -> Block:
    match = _MD_HEADING.match(text[start:end])
    if not match or not match.group(2).strip():  # "# \u2028# ": nothing but Unicode spaces after the marks
        return Block("heading", start, end, setext)
    inner = match.group(2)
    lead = len(inner) - len(inner.lstrip())
    return Block(
        "heading", start + match.start(2) + lead, start + match.start(2) + len(inner.rstrip()), len(match.group(1))
    )


def _body_shape(blocks: list[Block], i: int) -> str:
    """The kind of the block right after heading ``i``: its body ("" when it is a heading, or none)."""
    if i + 1 >= len(blocks) or blocks[i + 1].kind == "heading":
        return ""
    kind = blocks[i + 1].kind
    return "table" if kind.startswith("table") else kind


def _infer_levels(text: str, blocks: list[Block]) -> Iterator[Block]:
    """Assign levels to plain-text headings (level 0) as the module docstring describes."""
    # A first line that reads as a heading is the title: level 1, the rest below it.
    base = 1 if blocks and blocks[0].kind == "heading" and not blocks[0].level else 0
    parent_level = 0  # level of the open parent heading, 0 when none
    child_shape = ""  # body shape of the first child under the open parent
    for i, block in enumerate(blocks):
        if block.kind != "heading" or block.level:
            yield block
            continue
        if i == 0 and base:
            yield Block("heading", block.start, block.end, 1)
            continue
        numbered = _NUMBERED.match(text[block.start : block.end])
        next_is_heading = i + 1 < len(blocks) and blocks[i + 1].kind == "heading"
        shape = _body_shape(blocks, i)
        if numbered:
            level = base + numbered.group(1).count(".") + 1
        elif parent_level and (not child_shape or shape in ("", child_shape)):
            level = parent_level + 1
            child_shape = child_shape or shape
        else:
            level = base + 1
            parent_level, child_shape = 0, ""
        if next_is_heading and not numbered:
            parent_level, child_shape = level, ""
        yield Block("heading", block.start, block.end, level)


def parse_blocks(text: str, *, markdown: bool = False) -> tuple[Block, ...]:
    """Split a document's text into structural blocks with exact offsets.

    Args:
        text: The document text, unchanged.
        markdown: Treat the text as Markdown (``#`` headings only, soft-wrapped paragraphs).

    Returns:
        Blocks in document order; headings carry their level (1 = top).

    Example:
        >>> [b.kind for b in parse_blocks("Title\\nIntro\\nSome text.\\n")]
        ['heading', 'heading', 'paragraph']
    """
    blocks = _raw_blocks(text, markdown)
    return tuple(_infer_levels(text, blocks))


def heading_text(text: str, block: Block) -> str:
    """The visible text of a heading block, whitespace collapsed, Markdown's inline marks read as their text."""
    shown = text[block.start : block.end]
    for pattern, replacement in _INLINE_MARKS:
        shown = pattern.sub(replacement, shown)
    return " ".join(shown.split())


_NOT_IN_SLUG = re.compile(r"[^\w\- ]")


def heading_anchors(text: str, blocks: tuple[Block, ...]) -> tuple[tuple[int, str], ...]:
    """Each heading's anchor as GitHub-style renderers make it, at the heading's offset.

    Lowercased, characters other than letters, digits, ``_``, ``-`` and spaces dropped, spaces made
    ``-``; a repeated anchor gets ``-1``, ``-2``, ... in order.

    Example:
        >>> t = "## Hello, World!\n\n## Hello, World!\n\n## Café & más_2"
        >>> [name for _, name in heading_anchors(t, parse_blocks(t, markdown=True))]
        ['hello-world', 'hello-world-1', 'café--más_2']
    """
    seen: dict[str, int] = {}
    anchors = []
    for block in blocks:
        if block.kind != "heading":
            continue
        slug = _NOT_IN_SLUG.sub("", heading_text(text, block).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.append((block.start, slug if count == 0 else f"{slug}-{count}"))
    return tuple(anchors)


def title_block(blocks: tuple[Block, ...]) -> Block | None:
    """The heading that titles the document, if any.

    It is the first block when that is a heading and no later heading is at
    its level or above; such a title is left out of section paths.
    """
    if not blocks or blocks[0].kind != "heading":
        return None
    top = blocks[0].level
    later = (b for b in blocks[1:] if b.kind == "heading")
    return None if any(b.level <= top for b in later) else blocks[0]


def section_paths(text: str, blocks: tuple[Block, ...]) -> list[tuple[str, ...]]:
    """The section path of every block: the headings above it, the title left out.

    A heading's own path ends with itself.
    """
    title = title_block(blocks)
    stack: list[tuple[int, str]] = []
    paths: list[tuple[str, ...]] = []
    for block in blocks:
        if block.kind == "heading" and block is not title:
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, heading_text(text, block)))
        paths.append(tuple(name for _, name in stack))
    return paths


def section_path_at(text: str, blocks: tuple[Block, ...], offset: int) -> tuple[str, ...]:
    """The section path at ``offset``: that of the last block starting at or before it (as citations name it)."""
    found: tuple[str, ...] = ()
    for block, path in zip(blocks, section_paths(text, blocks), strict=True):
        if block.start > offset:
            break
        found = path
    return found
