"""Tests for ``qa.htmltext``: the text a browser shows is the text indexed, block by block."""

from __future__ import annotations

import pytest

from qa.htmltext import html_document, html_page, style_hides


def blocks_of(markup: str) -> list[tuple[str, str]]:
    """(kind, text) of every block extracted from ``markup``."""
    text, blocks, _ = html_document(markup)
    return [(b.kind, text[b.start : b.end]) for b in blocks]


def texts_of(markup: str) -> list[str]:
    return [text for _, text in blocks_of(markup)]


# --- block-level elements separate their text --------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "texts"),
    [
        (
            "<details><summary>Shipping</summary>We ship orders in three days.</details>",
            ["Shipping", "We ship orders in three days."],
        ),
        ("<fieldset><legend>Billing</legend>Pay by card.</fieldset>", ["Billing", "Pay by card."]),
        (
            "<p>Before center.<center>Centered notice here.</center>After center.</p>",
            ["Before center.", "Centered notice here.", "After center."],
        ),
        ("Write to<address>Acme Ltd, 1 High St</address>today.", ["Write to", "Acme Ltd, 1 High St", "today."]),
        ("Fees<table><caption>Table 1</caption></table>", ["Fees", "Table 1"]),
        ("<hgroup>Title<search>Find</search></hgroup>", ["Title", "Find"]),
        ("<select><option>Choose a plan</option><option>Gold plan</option></select>", ["Choose a plan", "Gold plan"]),
        ("<menu><li>Copy</li><li>Paste</li></menu>After.", ["Copy", "Paste", "After."]),
        ("<dialog open>Saved.</dialog>Next.", ["Saved.", "Next."]),
    ],
)
def test_block_level_elements_do_not_glue_words(markup: str, texts: list[str]) -> None:
    """Pins glued words: details, summary, fieldset, legend, center, address, caption, option and others
    were inline to the parser, so '<summary>Shipping</summary>We ship' became 'ShippingWe ship', and
    <center> ran the sentences before and after it into one."""
    assert texts_of(markup) == texts


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        # Controls are drawn as boxes: the words beside them are apart on the page.
        (
            '<p>Contact <span>support</span><label>Email</label><input value="x"><button>Send message</button>'
            " today.</p>",
            "Contact supportEmail Send message today.",
        ),
        ("<p>Name<textarea>Typed</textarea>Next<select></select>Last</p>", "Name Typed Next Last"),
        # Inline elements add no space a browser would not show.
        ("<p>Email me<span>.</span>Then <b>c</b>all <label>now</label>.</p>", "Email me.Then call now."),
        ('<p>Pay<input type="hidden" value="1">ment</p>', "Payment"),
    ],
)
def test_inline_elements_are_apart_only_where_a_browser_shows_them_apart(markup: str, text: str) -> None:
    assert texts_of(markup) == [text]


# --- what a browser does not show is not text ---------------------------------------------------


@pytest.mark.parametrize(
    "hidden",
    [
        "<div hidden>Secret draft.</div>",
        "<div hidden=hidden>Secret <b>draft</b>.</div>",
        '<div style="display:none">Secret draft.</div>',
        '<div style="color: red; DISPLAY : None !important">Secret draft.</div>',
        '<p style="visibility: hidden">Secret draft.</p>',
        '<span style="Visibility:Hidden">Secret draft.</span>',
        "<div hidden><img src=a.png><br>Secret<br>draft.<hr><input></div>",
        "<div hidden><div>Secret</div><p>draft.<div>More.</div></div>",
        "<section hidden><table><tr><td>Secret<td>draft.</table></section>",
        "<div hidden><script>x()</script><template>t</template>Secret draft.</div>",
        "<dialog>Secret draft.</dialog>",
        "<div hidden>Secret draft.</b></i></span></div>",
    ],
)
def test_hidden_elements_and_all_inside_them_are_left_out(hidden: str) -> None:
    """Pins quotable hidden text: ``hidden`` and ``display: none`` content was indexed and could be cited."""
    page = html_page(f"<p>Before.</p>{hidden}<p>After.</p>")
    assert page.text == "Before.\n\nAfter."


@pytest.mark.parametrize(
    ("markup", "texts"),
    [
        # An <li>, <p> or cell left open ends where a browser ends it: what follows it is shown.
        ("<ul><li hidden>Secret<li>Shown</ul>", ["Shown"]),
        ("<ul><li hidden>Secret<ul><li>also secret</ul><li>Shown</ul>", ["Shown"]),
        ("<p hidden>Secret<div>Shown</div>", ["Shown"]),
        ("<table><tr><td hidden>Secret<td>Shown</table>", ["Shown |"]),
        ("<table><tr hidden><td>Secret<tr><td>Shown</table>", ["Shown |"]),
        ("<ul><li><span hidden>Secret</li><li>Shown</li></ul>", ["Shown"]),
        ("<div><p hidden>Secret</div><p>Shown</p>", ["Shown"]),
        # A stray </p> inside a hidden div does not end it.
        ("<div hidden>Secret</p>more</div><p>Shown</p>", ["Shown"]),
        # Seen by browsers: aria-hidden hides from screen readers only; until-found is shown when searched.
        ('<p aria-hidden="true">Shown</p>', ["Shown"]),
        ('<div hidden="until-found">Shown</div>', ["Shown"]),
        ('<p style="display: block; visibility: visible">Shown</p>', ["Shown"]),
        ('<p style="--display: none">Shown</p>', ["Shown"]),
    ],
)
def test_hidden_elements_end_where_a_browser_ends_them(markup: str, texts: list[str]) -> None:
    assert texts_of(markup) == texts


@pytest.mark.parametrize(
    ("style", "hidden"),
    [
        ("display:none", True),
        ("display : NONE ;", True),
        ("visibility:collapse", True),
        ("display:none; display:block", False),
        ("display:none !important; display:block", True),
        ("background:url(data:image/png;base64,AAA); display:none", True),
        ("display:nonesuch", False),
        ("", False),
    ],
)
def test_style_hides(style: str, hidden: bool) -> None:
    assert style_hides(style) is hidden


# --- the page's title ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "title"),
    [
        ("<html><head><title>Data Retention Rules</title></head><body><p>Kept.</p>", "Data Retention Rules"),
        ("<title>\n  Refund\n Policy </title><p>Kept.</p>", "Refund Policy"),
        ("<title>First</title><title>Second</title><p>Kept.</p>", "First"),
        ("<svg><title>Icon</title></svg><p>Kept.</p>", None),
        ("<title> </title><p>Kept.</p>", None),
        ("<p>Kept.</p>", None),
    ],
)
def test_the_title_element_is_the_pages_title_not_its_text(markup: str, title: str | None) -> None:
    """Pins a gap: a page with a <title> and no <h1> was titled by its file name; the <title> text was
    thrown away. It names the page and stays out of the text (a browser shows it in the tab)."""
    page = html_page(markup)
    assert (page.title, page.text) == (title, "Kept.")


# --- <br> is a line break inside its block ------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "blocks"),
    [
        ("<h1>Annual<br>Report 2024</h1><p>Text.</p>", [("heading", "Annual\nReport 2024"), ("paragraph", "Text.")]),
        ("<ul><li>Ships to Canada<br>and Mexico</li></ul>", [("list_item", "Ships to Canada\nand Mexico")]),
        (
            "<p>Our office is at<br>12 Main Street<br/>and opens at nine.</p>",
            [("paragraph", "Our office is at\n12 Main Street\nand opens at nine.")],
        ),
        # Breaks at the ends, and around nothing but spaces, add no empty lines.
        ("<p><br>Line one <br> <br></p>", [("paragraph", "Line one")]),
        ("<li>One<br><br>two</li>", [("list_item", "One\ntwo")]),
        # Two in a row are a blank line on the page: in running text, a new paragraph.
        ("<p>First part.<br><br>Second part.</p>", [("paragraph", "First part."), ("paragraph", "Second part.")]),
        ("<p>First</br>second</p>", [("paragraph", "First\nsecond")]),
        # In a data table's cell a line break stays a space: a row is one line.
        ("<table><tr><td>Cardiff<br>(temporary)<td>9</table>", [("table_row", "Cardiff (temporary) | 9 |")]),
    ],
)
def test_a_line_break_keeps_its_element_one_block(markup: str, blocks: list[tuple[str, str]]) -> None:
    """Pins split blocks: '<h1>Annual<br>Report 2024</h1>' was heading 'Annual' and paragraph
    'Report 2024', and a sentence broken over lines was cut into separate passages."""
    assert blocks_of(markup) == blocks


def test_a_heading_broken_over_lines_names_its_section_on_one_line() -> None:
    page = html_page("<h1>Annual<br>Report 2024</h1><p>Text.</p>")
    assert page.text == "Annual\nReport 2024\n\nText."


# --- layout tables are read as the page they lay out --------------------------------------------

LAYOUT = (
    '<table width="100%"><tr><td>'
    "<h1>Member Newsletter</h1><h2>Pool Hours</h2>"
    "<p>The pool opens at six every morning.</p><p>Lifeguards are on duty until eight.</p>"
    "<h2>Parking</h2><ul><li>Park only in marked spaces.</li><li>Guests use lot B.</li></ul>"
    "</td></tr></table>"
)


@pytest.mark.parametrize(
    ("markup", "blocks"),
    [
        (
            LAYOUT,
            [
                ("heading", "Member Newsletter"),
                ("heading", "Pool Hours"),
                ("paragraph", "The pool opens at six every morning."),
                ("paragraph", "Lifeguards are on duty until eight."),
                ("heading", "Parking"),
                ("list_item", "Park only in marked spaces."),
                ("list_item", "Guests use lot B."),
            ],
        ),
        # Several paragraphs in a cell, and a data table inside the layout: the data table keeps its rows.
        (
            "<table><tr><td>Menu</td><td><p>Dear member,</p><p>Fees are changing.</p>"
            "<table><tr><th>Item<th>Fee<tr><td>Card<td>5</table></td></tr></table><p>Bye.</p>",
            [
                ("paragraph", "Menu"),
                ("paragraph", "Dear member,"),
                ("paragraph", "Fees are changing."),
                ("table_header", "Item | Fee |"),
                ("table_row", "Card | 5 |"),
                ("paragraph", "Bye."),
            ],
        ),
        # A layout table inside a layout table (as e-mails nest them): both are read as blocks.
        (
            "<table><tr><td><table><tr><td><h2>News</h2>Text.</td></tr></table></td><td>Side</td></tr></table>",
            [("heading", "News"), ("paragraph", "Text."), ("paragraph", "Side")],
        ),
        # A data table stays rows: one paragraph or list per cell is a cell's text.
        (
            "<table><tr><th>Office</th><th>Manager</th></tr><tr><td><p>Glasgow depot</p></td>"
            "<td><ul><li>Owen<li>Price</ul></td></tr><tr><td>Wales</td></tr></table>",
            [
                ("table_header", "Office | Manager |"),
                ("table_row", "Glasgow depot | Owen Price |"),
                ("table_row", "Wales |"),
            ],
        ),
    ],
)
def test_a_layout_table_is_read_as_blocks_and_a_data_table_as_rows(markup: str, blocks: list[tuple[str, str]]) -> None:
    """Pins a whole page flattened into one "table row": a newsletter laid out in a table cell was one
    block ending in " |", with no headings, so every quote from it was the whole page."""
    assert blocks_of(markup) == blocks


def test_an_id_on_a_layout_cell_points_at_its_first_block() -> None:
    text, _, anchors = html_document("<p>Intro.</p><table><tr><td id=news><h2>News</h2><p>Text.</p></table>")
    assert [(text[start:], name) for start, name in anchors] == [("News\n\nText.", "news")]
