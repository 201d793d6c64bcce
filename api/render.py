"""The source viewer's HTML: a document as readable text, a cited range marked, every character escaped.

Every string that comes from a document goes through :func:`html.escape`: a document is always shown
as text, never interpreted as HTML. ``api.pages`` wraps this body in a page and serves it.
"""

from __future__ import annotations

from html import escape

from qa.cite import pages_of
from qa.structure import is_table_rule, section_path_at
from qa.types import Block, Document, Span

BLOCK_TAGS = {"paragraph": "p", "list_item": "li", "table_header": "div", "table_row": "div"}
BLOCK_CLASSES = {"table_header": "tr th", "table_row": "tr"}
# Runs of list items share a <ul>, runs of table rows a <div class="table">.
GROUP_OF = {"list_item": "ul", "table_header": "table", "table_row": "table"}


def render_view(doc: Document, start: int | None, end: int | None) -> str:
    """The viewer's body: where the citation is, then the whole document."""
    info = f"<p class='docid'>Source <code>{escape(doc.id)}</code> · {len(doc.text):,} characters</p>"
    if start is not None and end is not None:
        path = section_path_at(doc.text, doc.blocks, start) or (doc.title,)
        crumbs = "".join(f"<li>{escape(name)}</li>" for name in path)
        where = pages_of(doc, Span(start, end)).get("pages")
        on = (
            f" on page {where[0]}"
            if where and len(where) == 1
            else f" on pages {where[0]}–{where[-1]}"
            if where
            else ""
        )
        info += (
            f"\n<nav aria-label='Section path'><ol class='crumbs'>{crumbs}</ol></nav>"
            f"\n<p class='range'>Cited: characters {start:,}–{end:,}{on}. <a href='#cited'>Go to the citation</a></p>"
        )
    article = f"<article class='doc' data-format='{escape(doc.format)}'>{render_text(doc, start, end)}</article>"
    return f"<div class='info'>{info}</div>\n{article}"


class Marker:
    """Escapes spans of a document, wrapping what lies inside the cited range in ``<mark>``.

    The first mark is ``id="cited"`` (the scroll target). A range that crosses blocks
    becomes one ``<mark class="cited">`` per piece; together they hold exactly ``text[start:end]``.
    """

    def __init__(self, text: str, start: int | None, end: int | None) -> None:
        self.text = text
        self.start, self.end = (start, end) if start is not None and end is not None else (0, 0)
        self.first = True

    def __call__(self, a: int, b: int, *, gap: bool = False) -> str:
        s, e = max(a, self.start), min(b, self.end)
        if s >= e:
            return escape(self.text[a:b])
        attrs = ' id="cited"' if self.first else ""
        self.first = False
        mark = f'<mark class="{"cited gap" if gap else "cited"}"{attrs}>{escape(self.text[s:e])}</mark>'
        return escape(self.text[a:s]) + mark + escape(self.text[e:b])


def render_text(doc: Document, start: int | None, end: int | None) -> str:
    """The document as HTML: every character of ``doc.text`` appears once, escaped, in order.

    Blocks become headings, paragraphs, list items and table rows; the whitespace between
    them stays in the markup, where the stylesheet collapses it. Text that no block covers,
    such as a plain-text document without structure, keeps its line breaks (``pre-wrap``).
    """
    mark = Marker(doc.text, start, end)
    out: list[str] = []
    group = ""  # the open wrapper: "ul", "table" or none
    at = 0
    pages = list(doc.pages)  # PDF pages not yet marked: a marker (no text of its own) before each one's first block
    for block in sorted(doc.blocks, key=lambda b: b.start):
        if block.start < at:  # overlapping blocks: show the text once
            continue
        while pages and pages[0][1] <= block.start:
            out.append(page_marker(pages.pop(0)[0]))
        gap = doc.text[at : block.start]
        wanted = GROUP_OF.get(block.kind, "")
        if group == wanted == "table" and is_table_rule(gap):
            out.append(trimmed(mark, at, block.start, "tr rule"))  # the rule stays inside its table
        else:
            if group and (gap.strip() or wanted != group):
                out.append("</ul>" if group == "ul" else "</div>")
                group = ""
            out.append(loose(mark, at, block.start))
            if wanted and wanted != group:
                out.append("<ul class='list'>" if wanted == "ul" else "<div class='table'>")
                group = wanted
        out.append(render_block(block, mark))
        at = block.end
    if group:
        out.append("</ul>" if group == "ul" else "</div>")
    out.append(loose(mark, at, len(doc.text)))
    return "".join(out)


def page_marker(number: int) -> str:
    """Where a PDF page starts: an empty element (the stylesheet writes "Page N"), the target of ``#page-N``."""
    return f"<span class='page-marker' id='page-{number}' data-page='{number}'></span>"


def loose(mark: Marker, a: int, b: int) -> str:
    """Text outside any block: whitespace as it is, anything else in a pre-wrap ``div``."""
    if not mark.text[a:b].strip():
        return mark(a, b, gap=True)
    return trimmed(mark, a, b, "loose")


def trimmed(mark: Marker, a: int, b: int, cls: str) -> str:
    """``text[a:b]`` in a ``div``, with the whitespace around it left outside (where it collapses)."""
    text = mark.text[a:b]
    s, e = a + len(text) - len(text.lstrip()), b - (len(text) - len(text.rstrip()))
    return f"{mark(a, s, gap=True)}<div class='{cls}'>{mark(s, e)}</div>{mark(e, b, gap=True)}"


def render_block(block: Block, mark: Marker) -> str:
    """One block as an element holding its text (a table row as cells: ``render_row``)."""
    if block.kind in ("table_header", "table_row"):
        row = render_row(block, mark)
        if row is not None:
            return row
    tag = f"h{min(max(block.level, 1), 6)}" if block.kind == "heading" else BLOCK_TAGS.get(block.kind, "p")
    cls = f" class='{BLOCK_CLASSES[block.kind]}'" if block.kind in BLOCK_CLASSES else ""
    return f"<{tag}{cls}>{mark(block.start, block.end)}</{tag}>"


def render_row(block: Block, mark: Marker) -> str | None:
    """A table row as cells: each cell a ``span.td``, its pipes kept (hidden by the stylesheet, so the text
    is still every character once). A row inside the cited range is itself the ``mark``. None when the
    cited range starts or ends inside the row: it is then shown as text, its marks exactly the cited part."""
    cited = mark.start <= block.start and block.end <= mark.end
    if not cited and mark.start < block.end and block.start < mark.end:
        return None
    text, out, at = mark.text, [], block.start
    for i in [i for i in range(block.start, block.end) if text[i] == "|"] + [block.end]:
        piece = escape(text[at:i])
        out.append(f"<span class='td'>{piece}</span>" if text[at:i].strip() else piece)
        if i < block.end:
            out.append("<span class='pipe'>|</span>")
        at = i + 1
    cls = BLOCK_CLASSES[block.kind]
    if not cited:
        return f"<div class='{cls}'>{''.join(out)}</div>"
    attrs = ' id="cited"' if mark.first else ""
    mark.first = False
    return f"<mark class='{cls} cited row'{attrs}>{''.join(out)}</mark>"
