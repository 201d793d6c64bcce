"""PDF citations carry their pages: tested on PDFs written by a PDF library (fpdf2), not by hand.

The generated report has a title and headings, a word hyphenated across a line end, a paragraph that
flows over a page break, two columns side by side and a table. For every answer unit of every passage,
its citation's page offsets are checked against the text pypdf extracts from that page alone.
"""

from __future__ import annotations

import io

import pytest

from qa.cite import cite, pages_of
from qa.errors import CorpusError
from qa.ingest import parse_document
from qa.tokens import tokenize
from qa.types import Span

fpdf = pytest.importorskip("fpdf", reason="fpdf2 (a dev dependency) writes the test PDFs")

TIDES = " ".join(f"Tide note {i} says the water rose {i} centimetres at noon." for i in range(150))
LEFT = "Left column: the pier was rebuilt in 1998 with oak beams. The oak came from local forests."
RIGHT = "Right column: the lighthouse was painted red in 2004. The lamp is electric now."


def report() -> bytes:
    pdf = fpdf.FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 10, "Harbour Survey Report", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, "Moorings", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 6, "The harbour has 112 moorings for small boats. Most are leased for a year.")
    pdf.cell(0, 6, "The harbour office keeps infor-", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, "mation on every mooring lease.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(0, 8, "Tides", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 6, TIDES)  # long enough to flow onto the next page
    pdf.add_page()
    pdf.cell(0, 8, "Two columns", new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y()
    pdf.set_xy(10, top)
    pdf.multi_cell(90, 6, LEFT)
    pdf.set_xy(110, top)
    pdf.multi_cell(90, 6, RIGHT)
    pdf.set_xy(10, top + 30)
    pdf.cell(0, 8, "Fees", new_x="LMARGIN", new_y="NEXT")
    with pdf.table() as table:
        for values in (("Boat", "Fee"), ("Dinghy", "40 euros"), ("Yacht", "300 euros")):
            row = table.row()
            for value in values:
                row.cell(value)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return report()


@pytest.fixture(scope="module")
def page_texts(pdf_bytes: bytes) -> list[str]:
    """Each page's text as pypdf extracts it on its own: the oracle for the page offsets."""
    from pypdf import PdfReader

    return [(page.extract_text() or "").strip() for page in PdfReader(io.BytesIO(pdf_bytes)).pages]


def test_every_citation_lies_on_its_pages_text(pdf_bytes: bytes, page_texts: list[str]) -> None:
    from qa.chunk import chunk_document

    doc = parse_document("harbour.pdf", pdf_bytes)
    assert [number for number, _ in doc.pages] == list(range(1, len(page_texts) + 1)) and len(page_texts) >= 3
    spans = [(p, u) for p in chunk_document(doc) for u in p.units]
    across = 0
    for passage, span in spans:
        c = cite(doc, passage, span, 0.5)
        if c.pages == (c.page,):
            assert page_texts[c.page - 1][c.page_start : c.page_end] == c.quote
        else:  # a sentence that runs over a page break is one unit: it names both pages, each part on its own
            assert c.pages == (c.page, c.page + 1)
            before, after = page_texts[c.page - 1][c.page_start :], page_texts[c.page][: c.page_end]
            assert c.quote == before + "\n" + after and not before.endswith((".", "!", "?"))
            across += 1
    assert across >= 1  # the tide notes flow over a page break mid-sentence
    assert len(spans) > 20 and {cite(doc, p, u, 0.5).page for p, u in spans} == {1, 2, 3, 4}
    # A quote across a page break (an answer joining two units) names both pages; a page that ends its
    # sentence is followed by a blank line, one that does not by a line break.
    for number, start in doc.pages[1:]:
        found = pages_of(doc, Span(start - 30, start + 25))
        assert found["pages"] == (number - 1, number) and found["page"] == number - 1
        before, after = page_texts[number - 2], page_texts[number - 1]
        gap = "\n\n" if before.endswith((".", "!", "?", ":", ";", '"', ")")) else "\n"
        assert before[found["page_start"] :] + gap + after[: found["page_end"]] == doc.text[start - 30 : start + 25]


def test_pdf_citations_have_sections_and_the_columns_are_not_interleaved(pdf_bytes: bytes) -> None:
    from qa.chunk import chunk_document

    doc = parse_document("harbour.pdf", pdf_bytes)
    text = " ".join(doc.text.split())
    assert LEFT in text and RIGHT in text and text.index(LEFT) < text.index(RIGHT)
    paths = {p.section_path for p in chunk_document(doc)}
    assert any("Tides" in path for path in paths) and any("Moorings" in path for path in paths)
    fees = next(p for p in chunk_document(doc) if "Yacht 300 euros" in p.text)
    assert cite(doc, fees, fees.units[0], 0.5).page == doc.pages[-1][0]  # the table is on the last page


def test_a_word_hyphenated_at_a_line_end_is_quoted_as_it_stands_and_searched_whole(pdf_bytes: bytes) -> None:
    doc = parse_document("harbour.pdf", pdf_bytes)
    assert "infor-\nmation" in doc.text  # the quote keeps the text as it stands
    assert "inform" in tokenize(doc.text) and tokenize("information") == ["inform"]


def test_pages_survive_storing_and_a_text_document_has_none(pdf_bytes: bytes) -> None:
    from qa.types import document_from_record, document_record

    doc = parse_document("harbour.pdf", pdf_bytes)
    assert document_from_record(document_record(doc)) == doc
    plain = parse_document("a.txt", b"Plain text.\n")
    assert plain.pages == () and "pages" not in document_record(plain)


def _encrypted(user_password: str) -> bytes:
    pdf = fpdf.FPDF()
    pdf.set_encryption(owner_password="owner", user_password=user_password)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 10, "Copying restricted: the pier opens at dawn.")
    return bytes(pdf.output())


def test_a_pdf_encrypted_without_a_user_password_is_read_and_one_with_a_password_refused() -> None:
    """An empty user password only restricts printing or copying: viewers open the file without asking,
    and so is it indexed (it was refused as "encrypted"). One that needs a password says so."""
    assert parse_document("open.pdf", _encrypted("")).text == "Copying restricted: the pier opens at dawn."
    with pytest.raises(CorpusError, match=r"^locked\.pdf: the PDF is encrypted \(it needs a password to open\)$"):
        parse_document("locked.pdf", _encrypted("secret"))


def test_running_headers_and_footers_are_left_out_and_a_sentence_runs_over_the_page_break() -> None:
    """A header and a page number on every page would otherwise sit inside the sentence that runs over the
    break, and the header would be taken for the document's title."""

    class Report(fpdf.FPDF):  # type: ignore[misc]  # fpdf2 has no type hints
        def header(self) -> None:
            self.set_font("Helvetica", size=9)
            self.cell(0, 6, "ACME Corp Confidential Report 2024", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", size=9)
            self.cell(0, 6, f"Page {self.page_no()} of 3")

    pdf = Report(format=(105, 148))  # A6, in millimetres
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 8, "Quarterly Results", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 5, " ".join(f"Region {i} grew by {i} percent in the quarter." for i in range(60)))
    doc = parse_document("acme.pdf", bytes(pdf.output()))
    assert len(doc.pages) >= 3
    assert doc.title == "Quarterly Results"
    assert "ACME Corp" not in doc.text and "Page 2 of 3" not in doc.text
    from qa.chunk import chunk_document

    units = [doc.text[u.start : u.end] for p in chunk_document(doc) for u in p.units]
    expected = [f"Region {i} grew by {i} percent in the quarter." for i in range(60)]
    assert [" ".join(u.split()) for u in units] == expected  # each sentence whole, wherever the pages break
