"""The source viewer's HTML: a document as readable text, a cited range marked, every character escaped.

Every string that comes from a document goes through :func:`html.escape`: a document is always shown
as text, never interpreted as HTML. ``api.pages`` wraps this body in a page and serves it.
"""

from __future__ import annotations

from html import escape

from qa.structure import is_table_rule, section_path_at
from qa.types import Block, Document

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
        info += (
            f"\n<nav aria-label='Section path'><ol class='crumbs'>{crumbs}</ol></nav>"
            f"\n<p class='range'>Cited: characters {start:,}–{end:,}. <a href='#cited'>Go to the citation</a></p>"
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
    for block in sorted(doc.blocks, key=lambda b: b.start):
        if block.start < at:  # overlapping blocks: show the text once
            continue
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
    """One block as an element holding its text."""
    tag = f"h{min(max(block.level, 1), 6)}" if block.kind == "heading" else BLOCK_TAGS.get(block.kind, "p")
    cls = f" class='{BLOCK_CLASSES[block.kind]}'" if block.kind in BLOCK_CLASSES else ""
    return f"<{tag}{cls}>{mark(block.start, block.end)}</{tag}>"
