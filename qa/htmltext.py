"""Extract readable text and its structure from HTML, without running anything in it.

Headings (``h1``-``h6``), paragraphs, list items and table rows become
blocks; scripts, styles and other non-content elements are dropped. The
extracted text joins blocks with blank lines, and table cells with `` | ``.
Element ids (and ``<a name>``) are kept as anchors: each at the start of the
block that holds the element's first text, so a citation can point into the page.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from qa.types import Block, BlockKind

# Elements whose content is not document text. "head" is not here: HTML5 may omit </head>, and the
# head's only text-bearing children (title, style, script) are skipped one by one.
_SKIP = frozenset({"script", "style", "noscript", "template", "title", "svg", "math", "iframe", "object"})
_BREAKS = frozenset(
    {"p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "blockquote",
     "pre", "br", "hr", "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "figure", "figcaption",
     "form", "body", "html", "head"}
)  # fmt: skip
_UNFINISHED_TAG = re.compile(r"<[a-zA-Z/!?]")
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"})
# Longer ids are not kept as anchors (a URL fragment that long is not a real page's anchor).
MAX_ANCHOR_CHARS = 200


def heading_level(tag: str) -> int:
    """The level of a heading element (``h1`` to ``h6``), 0 for any other."""
    return int(tag[1]) if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456" else 0


def opens_segment(tag: str) -> bool:
    """Whether the element's text starts a segment of its own (the text before it is flushed first)."""
    return tag in ("tr", "li") or tag in _BREAKS or heading_level(tag) > 0


# Elements that open and close a table's row groups: an unclosed row or cell ends at them.
_ROW_GROUPS = frozenset({"table", "thead", "tbody", "tfoot"})
_LISTS = frozenset({"ul", "ol"})


class _Collector(HTMLParser):
    """Blocks from HTML, with the end tags HTML5 lets authors leave out: a ``td``/``th`` ends at the next
    cell, its row's end or the table's; a ``tr`` at the next row or the table's end; an ``li`` at the next
    item of its list or the list's end. Inside a cell, paragraphs, line breaks, lists and even a nested
    table are the cell's text (joined with spaces), so a row stays one row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: list[tuple[BlockKind, int, str]] = []
        self._buffer: list[str] = []
        self._kind: BlockKind = "paragraph"
        self._level = 0
        self._skip_depth = 0
        self._cells: list[str] | None = None  # the open row's cells
        self._in_cell = False
        self._nested = 0  # tables opened inside the open cell
        self._row_has_th = False
        self._lists: list[bool] = []  # per open list, innermost last: whether an item of it is open
        self._li_depth = 0  # open <li> elements: a <p> inside one is still the list item
        self.anchors: list[tuple[int, str]] = []  # (segment the element's text lands in, its id)

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if text:
            self.segments.append((self._kind, self._level, text))
        self._kind, self._level = ("list_item" if self._li_depth else "paragraph"), 0

    def _close_cell(self) -> None:
        if not self._in_cell:  # a stray </td>: the text before it is a paragraph's, kept
            return
        if self._cells is not None:
            self._cells.append(" ".join("".join(self._buffer).split()))
        self._in_cell = False
        self._buffer = []

    def _close_row(self) -> None:
        if self._cells is None:
            return
        self._close_cell()
        cells, self._cells = self._cells, None
        if any(cells):
            kind: BlockKind = "table_header" if self._row_has_th else "table_row"
            self.segments.append((kind, 0, (" | ".join(cells) + " |").strip()))  # a first cell may be empty

    def _open_item(self) -> None:
        if not self._lists:  # an item outside any list: as if in one
            self._lists.append(False)
        if self._lists[-1]:  # the item before it was left open: it ends here
            self._close_item()
        self._flush()
        self._lists[-1] = True
        self._li_depth += 1
        self._kind = "list_item"

    def _close_item(self) -> None:
        self._flush()
        if self._lists and self._lists[-1]:
            self._lists[-1] = False
            self._li_depth -= 1
        self._kind = "list_item" if self._li_depth else "paragraph"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip_depth += tag not in _VOID
            return
        if self._skip_depth:
            return
        structural = not (self._in_cell and (self._nested or tag == "table"))
        if structural and tag in ("tr", *_ROW_GROUPS):
            self._close_row()  # before the anchor: an id on the next row must not point at the one it ends
        elif structural and tag in ("td", "th") and self._cells is None:
            self._flush()
        self._anchor(tag, attrs)
        if not structural:
            self._nested += tag == "table"
            if opens_segment(tag) or tag in ("td", "th"):
                self._buffer.append(" ")
        elif tag == "tr":
            self._close_row()
            self._flush()
            self._cells, self._row_has_th = [], False
        elif tag in ("td", "th"):
            if self._cells is None:  # a cell outside any row: its row is implied
                self._cells, self._row_has_th = [], False
            self._close_cell()
            self._buffer = []  # what stood between the cells (whitespace, stray text) is no cell's
            self._row_has_th |= tag == "th"
            self._in_cell = True
        elif self._in_cell:
            if opens_segment(tag):
                self._buffer.append(" ")
        elif level := heading_level(tag):
            self._flush()
            self._kind, self._level = "heading", level
        elif tag == "li":
            self._open_item()
        elif tag in _BREAKS:
            if tag in _ROW_GROUPS:
                self._close_row()
            self._flush()
            if tag in _LISTS:
                self._lists.append(False)
        elif tag == "tfoot":
            self._close_row()

    def _anchor(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep an element's id (an ``a`` element's name) for the segment its text will be in."""
        found = dict(attrs)
        name = found.get("id") or (found.get("name") if tag == "a" else None)
        if name and 0 < len(name.strip()) <= MAX_ANCHOR_CHARS and name == name.strip():
            if opens_segment(tag) and not self._in_cell:
                self._flush()  # the element starts a segment of its own: flush first, so the id points at it
            self.anchors.append((len(self.segments), name))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if self._nested:
            self._nested -= tag == "table"
            if opens_segment(tag) or tag in ("td", "th"):
                self._buffer.append(" ")
        elif tag in ("td", "th"):
            self._close_cell()
        elif tag == "tr":
            self._close_row()
        elif tag in _ROW_GROUPS:
            self._close_row()
            self._flush()
        elif self._in_cell:
            if opens_segment(tag):
                self._buffer.append(" ")
        elif tag == "li":
            self._close_item()
        elif tag in _LISTS:
            if self._lists and self._lists[-1]:
                self._close_item()
            if self._lists:
                self._lists.pop()
            self._flush()
        elif tag in _BREAKS or heading_level(tag):
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._buffer.append(data)

    def close(self) -> None:
        # A tag cut off by the end of the file ('<img src=x onerror="alert(1)"') is what is left
        # unparsed; HTMLParser would hand it over as text, browsers drop it, and so do we.
        if _UNFINISHED_TAG.match(self.rawdata):
            self.rawdata = ""
        super().close()
        self._close_row()
        self._flush()


def html_document(markup: str) -> tuple[str, tuple[Block, ...], tuple[tuple[int, str], ...]]:
    """Extract the text of an HTML document, its blocks and its anchors.

    Args:
        markup: The HTML source.

    Returns:
        The extracted text (blocks separated by blank lines), blocks with offsets into it, and anchors:
        (offset of the block holding the element's first text, element id), in order.

    Example:
        >>> text, blocks, anchors = html_document("<h1 id=top>Hi</h1><p>One. <b>Two</b>.</p><script>x()</script>")
        >>> text, anchors
        ('Hi\\n\\nOne. Two.', ((0, 'top'),))
    """
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    parts: list[str] = []
    blocks: list[Block] = []
    cursor = 0
    for kind, level, text in collector.segments:
        if parts:
            parts.append("\n\n")
            cursor += 2
        blocks.append(Block(kind, cursor, cursor + len(text), level))
        parts.append(text)
        cursor += len(text)
    anchors = tuple((blocks[i].start, name) for i, name in collector.anchors if i < len(blocks))
    return "".join(parts), tuple(blocks), anchors
