"""Tests for ``qa.sentences``: sentence splitting, lead-ins and list items."""

from __future__ import annotations

import pytest

from qa.sentences import HARD_MAX_CHARS, introduces, is_caption, leads_in, split_sentences, starts_list_item


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith arrived. He sat down.", ["Dr. Smith arrived.", "He sat down."]),
        ("He went to the U.S. Senate. It was closed.", ["He went to the U.S. Senate.", "It was closed."]),
        (
            "Some agencies, e.g., ICE, share data. Others do not.",
            ["Some agencies, e.g., ICE, share data.", "Others do not."],
        ),
        ("Use i.e. Paris as a hub. Fine.", ["Use i.e. Paris as a hub.", "Fine."]),
        ("The budget was $2.8 billion. It grew.", ["The budget was $2.8 billion.", "It grew."]),
        ("Version 1.2.3 is out. Update now.", ["Version 1.2.3 is out.", "Update now."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("She wrote \u201cDone.\u201d Next came more.", ["She wrote \u201cDone.\u201d", "Next came more."]),
        ("(It ended.) A new one began.", ["(It ended.)", "A new one began."]),
        ("Is it legal? Yes. Really!  Maybe.", ["Is it legal?", "Yes.", "Really!", "Maybe."]),
        ("J. R. R. Tolkien wrote it. Done.", ["J. R. R. Tolkien wrote it.", "Done."]),
        ("It costs 3.5 dollars vs. 4 dollars. Fine.", ["It costs 3.5 dollars vs. 4 dollars.", "Fine."]),
        # A stop followed by a lower-case word is not a boundary.
        ("See fig. below. ok then.", ["See fig. below. ok then."]),
        # A sentence may begin with a digit or an opening quote.
        (
            "It ended. 2025 began. \u201cHello,\u201d she said.",
            ["It ended.", "2025 began.", "\u201cHello,\u201d she said."],
        ),
        # A line break inside a block does not end a sentence; a blank line does.
        ("Line one\nline two. Next.\n\nNew para", ["Line one\nline two.", "Next.", "New para"]),
        ("No final stop", ["No final stop"]),
        # Legal, bibliographic and address abbreviations end no sentence.
        ("It cites 42 U.S.C. 1983 and 5 U.S.C. 552 today.", ["It cites 42 U.S.C. 1983 and 5 U.S.C. 552 today."]),
        (
            "In Smith v. Jones the court agreed. See pp. 12-14.",
            ["In Smith v. Jones the court agreed.", "See pp. 12-14."],
        ),
        (
            "See p. 5 and Eq. 3, Tab. 1, Ref. 9. Call ext. 204.",
            ["See p. 5 and Eq. 3, Tab. 1, Ref. 9.", "Call ext. 204."],
        ),
        ("It is ca. 40 percent. Rev. Martin spoke.", ["It is ca. 40 percent.", "Rev. Martin spoke."]),
        # ... but those that stand before a number end one before a word.
        ("It gave 17O + p. (It was seen in 1925.)", ["It gave 17O + p.", "(It was seen in 1925.)"]),
        # An abbreviation that often ends a sentence ends one before a word that usually begins one.
        ("Pears, plums, etc. The rest is fruit.", ["Pears, plums, etc.", "The rest is fruit."]),
        ("He lives in the U.S. The weather is fine.", ["He lives in the U.S.", "The weather is fine."]),
        ("Smith et al. In 2003 they found it.", ["Smith et al.", "In 2003 they found it."]),
        ("Open 9 a.m. Monday to Friday. Closed Sundays.", ["Open 9 a.m. Monday to Friday.", "Closed Sundays."]),
        # Scripts besides Latin: Greek and Cyrillic capitals, Devanagari's danda, Chinese and Japanese stops.
        ("Компания основана в 1998 году. Офис в Москве.", ["Компания основана в 1998 году.", "Офис в Москве."]),
        (
            "Η εταιρεία ιδρύθηκε το 1998. Η έδρα είναι στην Αθήνα.",
            ["Η εταιρεία ιδρύθηκε το 1998.", "Η έδρα είναι στην Αθήνα."],
        ),
        (
            "当社は1998年に設立されました。本社は東京にあります。",
            ["当社は1998年に設立されました。", "本社は東京にあります。"],
        ),
        ("他说：“好。”然后走了！", ["他说：“好。”", "然后走了！"]),  # the closing quote stays with its stop
        ("कंपनी 1998 में बनी। मुख्यालय दिल्ली में है।", ["कंपनी 1998 में बनी।", "मुख्यालय दिल्ली में है।"]),
        ("   padded.   ", ["padded."]),
        ("", []),
        (" \n\t ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_corpus_sentence_with_eg_and_curly_apostrophe() -> None:
    item = (
        "State laws vary in controlling or prohibiting sharing of data with federal immigration authorities, "
        "e.g., California\u2019s SB 54 limits cooperation."
    )
    assert sentences(item) == [item]


def test_offsets_are_into_the_whole_text_for_a_sub_range() -> None:
    text = "Head.\nFirst one. Second one.\nTail."
    start, end = text.index("First"), text.index("\nTail")
    spans = split_sentences(text, start, end)
    assert [(s.start, s.end) for s in spans] == [(6, 16), (17, 28)]
    assert [text[s.start : s.end] for s in spans] == ["First one.", "Second one."]


def test_hard_cap_cuts_unbroken_text() -> None:
    """A 10,000-character line without spaces or punctuation is cut into HARD_MAX_CHARS pieces."""
    text = "x" * 10_000
    spans = split_sentences(text)
    assert [(s.start, s.end) for s in spans] == [
        (i, min(i + HARD_MAX_CHARS, 10_000)) for i in range(0, 10_000, HARD_MAX_CHARS)
    ]
    assert "".join(text[s.start : s.end] for s in spans) == text


def test_hard_cap_prefers_whitespace() -> None:
    text = "a" * 1000 + " " + "b" * 1000 + " " + "c" * 10
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == ["a" * 1000, "b" * 1000 + " " + "c" * 10]
    assert all(s.end - s.start <= HARD_MAX_CHARS for s in spans)


def test_hard_cap_keeps_pieces_trimmed() -> None:
    text = "w" * 1499 + "     " + "z" * 1600
    spans = split_sentences(text)
    pieces = [text[s.start : s.end] for s in spans]
    assert pieces == ["w" * 1499, "z" * 1500, "z" * 100]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("The primary mission of the Department is to", True),
        ("The Secretary shall have the responsibility for", True),
        ("The term includes the following:", True),
        ("Duties \u2014", True),
        ("The term \u201cState\u201d means", True),
        ("The Secretary is the head of the Department.", False),
        ("(A) prevent terrorist attacks;", False),
        ("Number of Fusion Centers | ~80 | Operating nationwide |", False),
        ("Hurricane Dora in 1964", False),
        ("Why is it so?", False),
        # Only the unit's last word is read: the word must start at a word boundary, and trailing
        # whitespace (however long) is not part of it.
        ("The definition of fishing", False),
        ("Xincluding", False),
        ("costs including", True),
        ("including", True),
        ("The data include   \n  ", True),
        ("the following items; and", False),
        ("x" * 5000 + " is", True),
    ],
)
def test_leads_in(unit: str, expected: bool) -> None:
    assert leads_in(unit) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(A) prevent attacks;", True),
        ("(iv) a clause", True),
        ("2. Second", True),
        ("3) Third", True),
        ("- ports", True),
        ("\u2022 borders", True),
        ("(2025) was a year", False),  # five characters in brackets: not a marker
        ("2025. The year", False),
        ("A Director", False),
    ],
)
def test_starts_list_item(text: str, expected: bool) -> None:
    assert starts_list_item(text) is expected


@pytest.mark.parametrize(
    ("unit", "caption", "introduces_next"),
    [
        ("(1) In general", True, True),
        ("(2) Head of Department", True, True),
        ("(iv) Definitions", True, True),
        ("(8) develop, coordinate, and implement", False, False),  # an item, not a caption: lower case
        ("(A) prevent terrorist attacks;", False, False),
        ("(1) A Director of the Secret Service.", False, False),  # closing punctuation
        ("In general", False, False),  # no number
        ("(B) " + "Word " * 30 + "End", False, False),  # too long for a caption
        ("The Director shall", False, True),  # a lead-in
    ],
)
def test_captions_and_what_introduces(unit: str, caption: bool, introduces_next: bool) -> None:
    assert is_caption(unit) is caption
    assert introduces(unit) is introduces_next
