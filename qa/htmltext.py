"""Extract readable text and its structure from HTML, without running anything in it.

Headings (``h1``-``h6``), paragraphs, list items and table rows become
blocks; scripts, styles and other non-content elements are dropped, and so is
what a browser does not show (``hidden``, ``display: none``). The extracted
text joins blocks with blank lines, and table cells with `` | ``; a ``<br>``
is a line break inside its block. A table that lays out a page (a cell holds a
heading or several paragraphs) is read as the blocks it holds, not as rows.
Element ids (and ``<a name>``) are kept as anchors: each at the start of the
block that holds the element's first text, so a citation can point into the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Literal

from qa.types import Block, BlockKind

# Elements whose content is not document text. "head" is not here: HTML5 may omit </head>, and the
# head's only text-bearing children (title, style, script) are skipped one by one. A datalist's options
# are never shown on the page.
_SKIP = frozenset({"script", "style", "noscript", "template", "title", "svg", "math", "iframe", "object", "datalist"})
# Block-level in browsers' default style sheet: their text never runs on into the text around them.
_BREAKS = frozenset(
    {"p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "blockquote",
     "pre", "hr", "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "figure", "figcaption",
     "form", "body", "html", "head", "address", "center", "details", "summary", "fieldset", "legend",
     "caption", "hgroup", "search", "dialog", "menu", "dir", "optgroup", "option"}
)  # fmt: skip
# Inline, but drawn as a box (a control): the words on either side are apart even with no space between.
_BOXES = frozenset({"button", "input", "select", "textarea"})
_UNFINISHED_TAG = re.compile(r"<[a-zA-Z/!?]")
_VOID = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr", "param", "track"}
)
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
_TABLE_PARTS = frozenset({*_ROW_GROUPS, "tr", "td", "th"})
_LISTS = frozenset({"ul", "ol", "menu", "dir"})
# In a cell, each of these is a paragraph of its own; two in one cell (or a heading) make a layout table.
_CELL_BLOCKS = frozenset({"p", "ul", "ol", "dl", "menu", "blockquote", "pre", "figure", "address", "table"})
# Start tags that end an open <p> (HTML5 closes a paragraph at any of them).
_CLOSES_P = frozenset(
    {"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "dd", "dt",
     "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup",
     "hr", "li", "main", "menu", "nav", "ol", "p", "pre", "search", "section", "summary", "table", "ul"}
)  # fmt: skip
_ITEM_LISTS = frozenset({"ul", "ol", "menu", "dir"})
_ROWS = frozenset({"tr", "tbody", "thead", "tfoot"})
# Elements whose end tag HTML5 lets authors leave out: the start tags that end them, unless one of the
# containers (opened inside the element) holds that start tag instead.
_IMPLIED_END: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "p": (_CLOSES_P, frozenset()),
    "li": (frozenset({"li"}), _ITEM_LISTS),
    "dt": (frozenset({"dt", "dd"}), frozenset({"dl"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"dl"})),
    "td": (frozenset({"td", "th", *_ROWS}), frozenset({"table"})),
    "th": (frozenset({"td", "th", *_ROWS}), frozenset({"table"})),
    "tr": (_ROWS, frozenset({"table"})),
    "thead": (_ROWS - {"tr"}, frozenset({"table"})),
    "tbody": (_ROWS - {"tr"}, frozenset({"table"})),
    "tfoot": (_ROWS - {"tr"}, frozenset({"table"})),
    "option": (frozenset({"option", "optgroup"}), frozenset()),
    "optgroup": (frozenset({"optgroup"}), frozenset()),
}


def style_hides(style: str) -> bool:
    """Whether an inline ``style`` hides its element (``display: none``, ``visibility: hidden``).

    As in CSS, names and keywords are case-insensitive, the last declaration of a property wins and
    an ``!important`` one wins over those without.

    Example:
        >>> style_hides("color: red; DISPLAY : None"), style_hides("display:none; display:block")
        (True, False)
    """
    found: dict[str, tuple[bool, str]] = {}
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        important = value.endswith("!important")
        value = value.removesuffix("!important").strip()
        if colon and name in ("display", "visibility") and (important or not found.get(name, (False, ""))[0]):
            found[name] = (important, value)
    return found.get("display", (False, ""))[1] == "none" or found.get("visibility", (False, ""))[1] in (
        "hidden",
        "collapse",
    )


def hides(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """Whether a browser leaves the element (and all inside it) off the page.

    ``hidden="until-found"`` is shown when find-in-page reaches it, so it is kept, and so is
    ``aria-hidden``, which hides from screen readers only.
    """
    found = dict(reversed(attrs))  # the first of repeated attributes is the one browsers use
    if "hidden" in found and (found["hidden"] or "").strip().lower() != "until-found":
        return True
    if (tag == "dialog" and "open" not in found) or (tag == "input" and (found.get("type") or "").lower() == "hidden"):
        return True
    return style_hides(found.get("style") or "")


@dataclass(slots=True)
class _Hidden:
    """An open element that a browser does not show, and what is open inside it (to find where it ends)."""

    tag: str
    inner: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # open elements inside it, by tag: O(1) lookups

    def ended_by(self, tag: str) -> bool:
        """Whether the start tag ``tag`` ends the element (its end tag left out, as HTML5 allows)."""
        ends, containers = _IMPLIED_END.get(self.tag, (frozenset(), frozenset()))
        return tag in ends and not any(self.counts.get(c) for c in containers)

    def open(self, tag: str) -> None:
        if tag not in _VOID:
            self.inner.append(tag)
            self.counts[tag] = self.counts.get(tag, 0) + 1

    def close(self, tag: str) -> Literal["inside", "ends", "ancestor", "stray"]:
        """What the end tag ``tag`` closes: an element inside, the hidden one, one around it, or nothing."""
        if self.counts.get(tag):
            while (inner := self.inner.pop()) != tag:  # elements left open inside end with it
                self.counts[inner] -= 1
            self.counts[tag] -= 1
            return "inside"
        if tag == self.tag:
            return "ends"
        # An unmatched block end tag closes an element around this one; a stray </p> never does, and an
        # unmatched inline end tag only closes an inline hidden element.
        if tag != "p" and (opens_segment(tag) or tag in _TABLE_PARTS or not opens_segment(self.tag)):
            return "ancestor"
        return "stray"


class _TableSurvey(HTMLParser):
    """First pass: which tables (in the order they open) lay out the page rather than hold data.

    A table lays out the page when one of its cells holds a heading or several paragraphs (or lists), or
    when a table inside it does: newsletters, e-mails and old sites put the whole page in such cells. A
    data table's cells hold short text, at most one paragraph or list each."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.layout: list[bool] = []
        self._open: list[int] = []  # open tables, innermost last
        self._blocks: list[int] = []  # paragraphs in the open cell of each open table

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _CELL_BLOCKS:
            self._count_block()
        if tag == "table":
            self._open.append(len(self.layout))
            self.layout.append(False)
            self._blocks.append(0)
        elif self._open and tag in ("tr", "td", "th"):
            self._blocks[-1] = 0
        elif heading_level(tag) and self._open:
            self.layout[self._open[-1]] = True

    def _count_block(self) -> None:
        if self._open:
            self._blocks[-1] += 1
            if self._blocks[-1] >= 2:
                self.layout[self._open[-1]] = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._open:
            self._close_table()

    def _close_table(self) -> None:
        index = self._open.pop()
        self._blocks.pop()
        if self.layout[index] and self._open:  # a cell holding a layout table holds the page's blocks
            self.layout[self._open[-1]] = True

    def close(self) -> None:
        if _UNFINISHED_TAG.match(self.rawdata):  # as _Collector.close does, so both passes see the same tags
            self.rawdata = ""
        super().close()
        while self._open:
            self._close_table()


class _Collector(HTMLParser):
    """Blocks from HTML, with the end tags HTML5 lets authors leave out: a ``td``/``th`` ends at the next
    cell, its row's end or the table's; a ``tr`` at the next row or the table's end; an ``li`` at the next
    item of its list or the list's end. Inside a data table's cell, paragraphs, line breaks, lists and even
    a nested table are the cell's text (joined with spaces), so a row stays one row. A layout table's
    cells (``layout``, from ``_TableSurvey``) are read as any other part of the page."""

    def __init__(self, layout: list[bool]) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: list[tuple[BlockKind, int, str]] = []
        self._buffer: list[str] = []  # the current line
        self._lines: list[str] = []  # the open segment's lines before it (ended by <br>), whitespace collapsed
        self._breaks = 0  # <br>s since the last text: two end a paragraph (a blank line on the page)
        self._kind: BlockKind = "paragraph"
        self._level = 0
        self._skip_depth = 0
        self._hidden: _Hidden | None = None
        self.title: str | None = None
        self._title_parts: list[str] | None = None  # while the page's first <title> is open
        self._layout = layout
        self._tables_seen = 0
        self._tables: list[bool] = []  # per open table read as a table or a layout, innermost last: layout?
        self._cells: list[str] | None = None  # the open row's cells
        self._in_cell = False
        self._nested = 0  # tables opened inside the open cell
        self._row_has_th = False
        self._lists: list[bool] = []  # per open list, innermost last: whether an item of it is open
        self._li_depth = 0  # open <li> elements: a <p> inside one is still the list item
        self.anchors: list[tuple[int, str]] = []  # (segment the element's text lands in, its id)

    def _line(self) -> str:
        line = " ".join("".join(self._buffer).split())
        self._buffer = []
        return line

    def _discard(self) -> None:
        self._buffer, self._lines, self._breaks = [], [], 0

    def _flush(self) -> None:
        text = "\n".join(line for line in (*self._lines, self._line()) if line)
        self._discard()
        if text:
            self.segments.append((self._kind, self._level, text))
        self._kind, self._level = ("list_item" if self._li_depth else "paragraph"), 0

    def _line_break(self) -> None:
        """A ``<br>``: the next text starts a new line of the same block; a second one in a row (a blank
        line on the page) ends a paragraph, but never a heading or a list item."""
        line = self._line()
        if line:
            self._lines.append(line)
        self._breaks = 1 if line else self._breaks + 1
        if self._breaks >= 2 and self._lines and self._kind == "paragraph":
            self._flush()

    def _close_cell(self) -> None:
        if not self._in_cell:  # a stray </td>: the text before it is a paragraph's, kept
            return
        if self._cells is not None:
            self._cells.append(self._line())
        self._in_cell = False
        self._discard()

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

    def _layout_part(self, tag: str) -> bool:
        """Whether ``tag`` is a row, cell or row group of a layout table (or the table): a block break only."""
        return tag in _TABLE_PARTS and bool(self._tables) and self._tables[-1]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:  # "<br/>" is one line break, not a <br> and a </br> (which browsers read as <br>)
            self.handle_endtag(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        is_layout = False
        if tag == "table":  # counted before anything is skipped, as _TableSurvey counts them
            is_layout = self._tables_seen < len(self._layout) and self._layout[self._tables_seen]
            self._tables_seen += 1
        if self._hidden is not None:
            if not self._hidden.ended_by(tag):
                self._hidden.open(tag)
                return
            self._hidden = None  # the hidden element ends here; this one may be shown
        if tag in _SKIP:
            if tag == "title" and not self._skip_depth and self.title is None and self._title_parts is None:
                self._title_parts = []
            self._skip_depth += tag not in _VOID
            return
        if self._skip_depth:
            return
        if hides(tag, attrs):
            if tag not in _VOID:
                self._hidden = _Hidden(tag)
            return
        structural = not (self._in_cell and (self._nested or tag == "table"))
        if structural and tag == "table":
            self._tables.append(is_layout)
        if structural and self._layout_part(tag):
            self._close_row()
            self._flush()
            self._anchor(tag, attrs)
            return
        self._start(tag, attrs, structural)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], structural: bool) -> None:
        if structural and tag in ("tr", *_ROW_GROUPS):
            self._close_row()  # before the anchor: an id on the next row must not point at the one it ends
        elif structural and tag in ("td", "th") and self._cells is None:
            self._flush()
        self._anchor(tag, attrs)
        if tag in _BOXES:
            self._buffer.append(" ")
        if tag == "br":
            self._buffer.append(" ") if self._in_cell else self._line_break()
        elif not structural:
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
            self._discard()  # what stood between the cells (whitespace, stray text) is no cell's
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
        if self._hidden is not None:
            closed = self._hidden.close(tag)
            if closed != "ancestor":
                self._hidden = None if closed == "ends" else self._hidden
                return
            self._hidden = None  # the end tag of an element around the hidden one ends both
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
            if tag == "title" and self._title_parts is not None:
                self._end_title()
            return
        if self._skip_depth:
            return
        if tag in _BOXES:
            self._buffer.append(" ")
        if self._nested:
            self._nested -= tag == "table"
            if opens_segment(tag) or tag in ("td", "th", "br"):
                self._buffer.append(" ")
        elif self._layout_part(tag):
            if tag == "table":
                self._tables.pop()
            self._flush()
        else:
            if tag == "table" and self._tables:
                self._tables.pop()
            self._end(tag)

    def _end(self, tag: str) -> None:
        if tag == "br":  # browsers read </br> as <br>
            self._buffer.append(" ") if self._in_cell else self._line_break()
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

    def _end_title(self) -> None:
        self.title = " ".join("".join(self._title_parts or ()).split())
        self._title_parts = None

    def handle_data(self, data: str) -> None:
        if self._title_parts is not None and self._skip_depth == 1:
            self._title_parts.append(data)
        if not self._skip_depth and self._hidden is None:
            self._buffer.append(data)

    def close(self) -> None:
        # A tag cut off by the end of the file ('<img src=x onerror="alert(1)"') is what is left
        # unparsed; HTMLParser would hand it over as text, browsers drop it, and so do we.
        if _UNFINISHED_TAG.match(self.rawdata):
            self.rawdata = ""
        super().close()
        if self._title_parts is not None:  # an unclosed <title> runs to the end of the file, as in browsers
            self._end_title()
        self._close_row()
        self._flush()


@dataclass(frozen=True, slots=True)
class HtmlPage:
    """An HTML document's extracted text, its blocks and anchors (as ``html_document`` returns them), and its
    ``<title>``: the page's name, which is not part of its text (a browser shows it in the tab, not the page)."""

    text: str
    blocks: tuple[Block, ...]
    anchors: tuple[tuple[int, str], ...]
    title: str | None


def html_page(markup: str) -> HtmlPage:
    """Extract the text of an HTML document, its blocks, its anchors and its title.

    Args:
        markup: The HTML source.

    Returns:
        The page: its text (blocks separated by blank lines), blocks with offsets into it, anchors
        ((offset of the block holding the element's first text, element id), in order) and the text
        of its first ``<title>``, whitespace collapsed (None when it has none, or an empty one).

    Example:
        >>> page = html_page("<title>Fees</title><p>Cards cost 5.</p><p hidden>Draft.</p>")
        >>> page.text, page.title
        ('Cards cost 5.', 'Fees')
    """
    survey = _TableSurvey()
    survey.feed(markup)
    survey.close()
    collector = _Collector(survey.layout)
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
    return HtmlPage("".join(parts), tuple(blocks), anchors, collector.title or None)


def html_document(markup: str) -> tuple[str, tuple[Block, ...], tuple[tuple[int, str], ...]]:
    """Extract the text of an HTML document, its blocks and its anchors (``html_page`` without the title).

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
    page = html_page(markup)
    return page.text, page.blocks, page.anchors
