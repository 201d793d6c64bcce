"""Metadata through the API (upload, documents, citations, search hits, passages) and filters on ask and search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_helpers import API_KEY, assert_problem

from qa.sources import read_source, source_path
from qa.storage import load_index

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ZEBRAS = "# Field notes\n\nThe zebra census counted 4,213 zebras on the northern plain.\n"
HERONS = "# Bird notes\n\nThe heron census counted 58 heron nests on the northern plain.\n"
META = {"tags": ["wildlife", "census"], "date": "2024-05-01", "source_url": "https://example.org/zebras", "pages": 2}
STORED = {"tags": ["wildlife", "census"], "date": "2024-05-01", "source_url": "https://example.org/zebras", "pages": 2}


def test_json_upload_metadata_comes_back_everywhere(client, index_copy: Path) -> None:
    """Set with the upload, the metadata is stored with the source, in the index, and returned by every route."""
    body = {"document_id": "zebras.md", "text": ZEBRAS, "metadata": META}
    assert client.post("/v1/documents", json=body, headers=AUTH).status_code == 201
    assert client.get("/v1/documents/zebras.md").json()["metadata"] == STORED
    listing = {d["document_id"]: d["metadata"] for d in client.get("/v1/documents").json()["documents"]}
    assert listing == {"immigration-data-sharing.txt": {}, "zebras.md": STORED}
    answer = client.post("/v1/ask", json={"question": "How many zebras did the census count?", "top_k": 1}).json()
    assert answer["citations"][0]["document_metadata"] == STORED
    hit = client.get("/v1/search", params={"q": "zebra census", "k": 1}).json()["results"][0]
    assert hit["document_id"] == "zebras.md" and hit["document_metadata"] == STORED
    assert client.get(f"/v1/passages/{hit['passage_id']}").json()["document_metadata"] == STORED
    assert read_source(source_path(index_copy, "zebras.md")).metadata["tags"] == ("wildlife", "census")
    assert load_index(index_copy, model="hash-64").documents["zebras.md"].metadata["pages"] == 2


def test_multipart_metadata_is_a_json_field_and_its_title_names_the_document(client) -> None:
    files = {"file": ("herons.md", HERONS.encode())}
    data = {"metadata": json.dumps({"title": "Heron survey", "tags": ["birds"]})}
    assert client.post("/v1/documents", files=files, data=data, headers=AUTH).status_code == 201
    document = client.get("/v1/documents/herons.md").json()
    assert document["title"] == "Heron survey" and document["metadata"] == {"title": "Heron survey", "tags": ["birds"]}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"tags": "one"}, "metadata.tags must be a list of strings"),
        ({"date": "May 2024"}, "date must be an ISO 8601 date"),
        ({"source_url": "ftp://x.org/a"}, "metadata.source_url must be an http or https URL"),
        ({"Bad-Name": 1}, "metadata field names must match"),
        ({"nested": {"a": 1}}, "metadata.nested must be a string, a number or a boolean"),
        ({f"f{i}": i for i in range(33)}, "the limit is 32"),
        ({"tags": [f"t{i}" for i in range(65)]}, "the limit is 64"),
        ({"note": "x" * 1001}, "metadata.note must be 1 to 1000 characters"),
    ],
)
def test_metadata_over_its_limits_is_a_422_naming_the_field(client, metadata, message) -> None:
    response = client.post(
        "/v1/documents", json={"document_id": "z.md", "text": ZEBRAS, "metadata": metadata}, headers=AUTH
    )
    body = assert_problem(response, 422)
    assert message in body["errors"][0]["msg"]
    assert client.get("/v1/documents/z.md").status_code == 404


def test_multipart_metadata_that_is_not_json_is_a_422(client) -> None:
    files = {"file": ("herons.md", HERONS.encode())}
    response = client.post("/v1/documents", files=files, data={"metadata": "{tags"}, headers=AUTH)
    assert "metadata must be a JSON object" in assert_problem(response, 422)["errors"][0]["msg"]


def _two_documents(client) -> None:
    for doc_id, text, tags in (("zebras.md", ZEBRAS, ["mammals"]), ("herons.md", HERONS, ["birds"])):
        body = {"document_id": doc_id, "text": text, "metadata": {"tags": tags, "year": 2024}}
        assert client.post("/v1/documents", json=body, headers=AUTH).status_code == 201


def test_a_filter_limits_ask_and_search_to_the_matching_documents(client) -> None:
    """The census question is answered from the birds when the filter asks for birds, on POST and GET."""
    _two_documents(client)
    question = "What did the census count on the northern plain?"
    birds = client.post("/v1/ask", json={"question": question, "filter": {"tags": "birds"}}).json()
    assert {c["document_id"] for c in birds["citations"]} == {"herons.md"}
    mammals = client.get("/v1/ask", params={"q": question, "filter": json.dumps({"tags": "mammals"})}).json()
    assert {c["document_id"] for c in mammals["citations"]} == {"zebras.md"}
    hits = client.get("/v1/search", params={"q": "census", "filter": '{"document_id": {"in": ["herons.md"]}}'})
    assert [h["document_id"] for h in hits.json()["results"]] == ["herons.md"]
    either = {"or": [{"tags": "birds"}, {"tags": "mammals"}], "year": {"gte": 2024}}
    hits = client.get("/v1/search", params={"q": "census", "k": 5, "filter": json.dumps(either)}).json()["results"]
    assert {h["document_id"] for h in hits} == {"herons.md", "zebras.md"}


@pytest.mark.parametrize(
    ("request_args", "message"),
    [
        ({"json": {"question": "census?", "filter": {"colour": "red"}}}, "unknown field 'colour'"),
        ({"json": {"question": "census?", "filter": {"year": "2024"}}}, "'year'"),
        ({"json": {"question": "census?", "filter": {"tags": {"gte": "a"}}}}, "'tags'"),
        ({"json": {"question": "census?", "filter": {"and": []}}}, "and"),
        # A whole number no float holds: refused as metadata refuses it, where comparing it raised a 500.
        ({"json": {"question": "census?", "filter": {"year": {"gt": 10**400}}}}, "'year' is a number beyond ±2**53"),
        ({"params": {"q": "census?", "filter": '{"year": 1' + "0" * 400 + "}"}}, "'year' is a number beyond ±2**53"),
    ],
)
def test_a_bad_filter_is_a_422_naming_the_field(client, request_args, message) -> None:
    _two_documents(client)
    method = "GET" if "params" in request_args else "POST"
    body = assert_problem(client.request(method, "/v1/ask", **request_args), 422)
    assert message in body["detail"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[1]", "filter must be a JSON object"),
        ('"tags"', "filter must be a JSON object"),
        # What is wrong with the text, not "must be a JSON object", when it cannot be read at all.
        ("{", "filter is not valid JSON (Expecting property name enclosed in double quotes at character 1)"),
        ("[" * 5000 + "]" * 5000, "filter is nested too deeply to parse"),
        ('{"year": ' + "9" * 5000 + "}", "filter holds a number too long to read"),
    ],
)
def test_a_filter_parameter_that_is_not_a_json_object_is_a_422(client, value: str, message: str) -> None:
    body = assert_problem(client.get("/v1/search", params={"q": "census", "filter": value}), 422)
    assert body["errors"][0]["msg"] == message
