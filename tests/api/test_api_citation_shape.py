"""One citation type: ``qa.types.Citation`` is the JSON record (``qa.records``), the API's schema and its bodies."""

from __future__ import annotations

import dataclasses

from api_helpers import API_KEY

from qa.records import CITATION_FIELDS, answer_record, citation_record
from qa.types import Citation

FIELDS = [f.name for f in dataclasses.fields(Citation)]


def test_the_record_has_every_field_of_the_type_in_order() -> None:
    citation = Citation(
        "q",
        "d.md",
        "D",
        "S",
        ("A", "S"),
        3,
        4,
        "p1",
        0.5,
        {"tags": ("a", "b"), "year": 2024},
        "v1",
        "s",
        "https://x.org/d#s",
        2,
        (2, 3),
        10,
        4,
    )
    assert list(CITATION_FIELDS) == FIELDS
    assert citation_record(citation) == {
        "quote": "q", "document_id": "d.md", "document_title": "D", "section": "S", "section_path": ["A", "S"],
        "start": 3, "end": 4, "passage_id": "p1", "score": 0.5,
        "document_metadata": {"tags": ["a", "b"], "year": 2024}, "document_version": "v1", "anchor": "s",
        "url": "https://x.org/d#s", "page": 2, "pages": [2, 3], "page_start": 10, "page_end": 4,
    }  # fmt: skip


def test_the_api_schema_is_the_core_type_field_by_field(make_client) -> None:
    client = make_client(api_keys=[API_KEY])
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert list(schemas["Citation"]["properties"]) == FIELDS
    assert schemas["AnswerOut"]["properties"]["citations"]["items"] == {"$ref": "#/components/schemas/Citation"}


def test_an_answer_over_http_is_the_core_record(make_client) -> None:
    """The same question through the engine and through the API gives the same record, field for field."""
    client = make_client(api_keys=[API_KEY])
    question = "How many fusion centers are there?"
    body = client.post("/v1/ask", json={"question": question}).json()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    record = answer_record(engine.ask(question))
    body.pop("took_ms"), record.pop("took_ms")
    assert body == record
    assert body["citations"] and all(list(c) == FIELDS for c in body["citations"])
