"""Request and response bodies: pydantic at the edge, one model per direction.

Request models forbid unknown fields and coerce nothing (``strict``): ``"3"``
is not a ``top_k``. Questions run through ``qa.engine.clean_question`` inside
validation, so every input rule fails as an ordinary 422 with ``errors``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from qa.collections import NAME
from qa.defaults import MAX_ANSWERS
from qa.engine import MAX_QUESTION_CHARS, clean_question
from qa.errors import QueryError
from qa.filters import FilterError, filter_json
from qa.ingest import check_document_id
from qa.metadata import MetadataError, MetaValue, clean_metadata
from qa.types import Citation, Distinct
from qa.verify import MAX_CITATIONS

MAX_TITLE_CHARS = 500
# A lone surrogate (JSON allows "\ud800"): found by a regular expression, fast over 10,000 long quotes.
_SURROGATE = re.compile("[\ud800-\udfff]")


def reject_surrogates(value: object, info: ValidationInfo) -> object:
    """Name a lone surrogate (JSON allows "\\ud800") before pydantic's str check fails vaguely on it."""
    if isinstance(value, str) and _SURROGATE.search(value):
        raise ValueError(f"{info.field_name} is not valid Unicode (it contains a lone surrogate)")
    return value


def check_question(value: str) -> str:
    """The trimmed question, or a ValueError naming the rule it breaks."""
    try:
        return clean_question(value)
    except QueryError as exc:
        raise ValueError(str(exc)) from None


def _has_bad_char(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in value)


def check_title(value: str | None) -> str | None:
    """A title is one line of valid text, or absent."""
    if value is None:
        return None
    value = " ".join(value.split())
    if not value or len(value) > MAX_TITLE_CHARS:
        raise ValueError(f"title must be 1 to {MAX_TITLE_CHARS} characters")
    if _has_bad_char(value):
        raise ValueError("title contains a control character or invalid Unicode")
    return value


def check_metadata(value: dict[str, Any] | None) -> dict[str, MetaValue]:
    """Metadata in canonical form, or a ValueError naming the field that breaks a rule (``qa.metadata``)."""
    try:
        return clean_metadata(value)
    except MetadataError as exc:
        raise ValueError(str(exc)) from None


def parse_metadata_field(value: object) -> object:
    """A multipart form's ``metadata`` field: JSON text of an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("metadata must be a JSON object") from None
    return value


Unicode = BeforeValidator(reject_surrogates)
Question = Annotated[
    str, Field(min_length=1, description=f"1 to {MAX_QUESTION_CHARS} characters after trimming"), Unicode
]
DocumentId = Annotated[str, AfterValidator(check_document_id), Unicode]
Title = Annotated[str | None, AfterValidator(check_title), Unicode]
METADATA_DESCRIPTION = (
    "title, source_url (http/https), tags (list of strings), date (ISO 8601), language (a tag such as 'en'), "
    "and up to 32 more string, number or boolean fields"
)
MetadataIn = Annotated[dict[str, Any] | None, AfterValidator(check_metadata)]
MetadataOut = dict[str, str | int | float | bool | list[str]]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


FILTER_DESCRIPTION = (
    'Answer only from the documents this metadata filter matches: {"tags": "policy"}, '
    '{"date": {"gte": "2024-01-01"}}, {"document_id": {"in": ["a.md"]}}, and/or/not (docs/api.md)'
)

DISTINCT_DESCRIPTION = (
    "With answers=n, what makes the answers distinct: 'quotes' (no answer lies within the first's quote or "
    "repeats another; two may come from one passage) or 'passages' (each from a passage of its own)"
)


def parse_filter_param(value: str | None) -> object:
    """A ``filter`` query parameter: JSON text of an object (checked against the index by the engine)."""
    if value is None:
        return None
    try:
        return filter_json(value)
    except FilterError as exc:
        raise ValueError(str(exc)) from None


FilterParam = Annotated[
    str | None, Query(alias="filter", description=f"JSON: {FILTER_DESCRIPTION}"), AfterValidator(parse_filter_param)
]


class AskRequest(_Request):
    """``POST /v1/ask``."""

    question: Annotated[Question, AfterValidator(check_question)]
    top_k: int = Field(3, ge=1, le=20, description="Citations to return")
    filter: dict[str, Any] | None = Field(None, description=FILTER_DESCRIPTION)
    answers: int = Field(1, ge=1, le=MAX_ANSWERS, description="Distinct answers to give, best first")
    distinct: Distinct = Field("quotes", description=DISTINCT_DESCRIPTION)


class DocumentIn(_Request):
    """``POST /v1/documents`` as JSON: the text is parsed by the id's suffix."""

    document_id: DocumentId = Field(description="Relative path such as 'policies/retention.md'", examples=["notes.md"])
    text: Annotated[str, Unicode] = Field(min_length=1, description="The document's content")
    title: Title = Field(None, description="Title; default: the metadata's title, else the first heading")
    metadata: MetadataIn = Field(None, description=METADATA_DESCRIPTION)


class UploadFields(_Request):
    """The form fields that come with a multipart upload (``metadata`` is JSON text)."""

    document_id: DocumentId
    title: Title = None
    metadata: Annotated[MetadataIn, BeforeValidator(parse_metadata_field)] = None


class CitedIn(BaseModel):
    """A citation as the API returned it: only the fields that locate the quote are read."""

    model_config = ConfigDict(extra="ignore", strict=True)

    document_id: Annotated[str, Unicode] = Field(max_length=1000)
    quote: Annotated[str, Unicode] = Field(min_length=1, max_length=100_000)
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class VerifyRequest(_Request):
    """``POST /v1/verify``."""

    citations: list[CitedIn] = Field(max_length=MAX_CITATIONS, description="Citations as /v1/ask returned them")


class VerdictOut(BaseModel):
    status: Literal["current", "moved", "gone"] = Field(
        description="current: the quote is at its offsets; moved: found elsewhere (new offsets); gone: not found"
    )
    start: int | None
    end: int | None
    document_version: str | None = Field(description="The document's current version; null when it is deleted")


class VerifyOut(BaseModel):
    results: list[VerdictOut] = Field(description="One per citation, in order")


class CollectionIn(_Request):
    """``POST /v1/collections``."""

    name: str = Field(pattern=NAME.pattern, description="1 to 64 of a-z, 0-9, '_' and '-', from a letter or digit")
    require_key_for_reads: bool = Field(False, description="Reads need a key with a read scope on it")


class CollectionOut(BaseModel):
    name: str
    require_key_for_reads: bool


class CollectionList(BaseModel):
    collections: list[CollectionOut] = Field(description="The default first, then by name")


class AlternativeOut(BaseModel):
    """One of several answers: a verbatim quote with its confidence and its citation."""

    answer: str
    confidence: float
    citations: list[Citation]


class AnswerOut(BaseModel):
    """The core's answer object, exactly as ``qa ask --json`` prints it."""

    question: str
    answerable: bool
    answer: str | None
    confidence: float
    citations: list[Citation] = Field(description="The core's citation type (qa.types.Citation), as is")
    took_ms: float
    reason: str | None = Field(
        description="Why the question was refused (a hard rule, or the feature that pulled its confidence down "
        "most); null when answered"
    )
    answers: list[AlternativeOut] = Field(
        description="With answers=n: up to n distinct answers (as `distinct` says), best first (the first is "
        "`answer`), each with its confidence (only the first must reach the threshold). Empty for a refusal"
    )


class SearchHitOut(BaseModel):
    passage_id: str
    document_id: str
    document_title: str
    section: str
    section_path: list[str]
    text: str
    start: int
    end: int
    score: float
    highlights: list[tuple[int, int]] = Field(description="[start, end) of query words inside text")
    document_metadata: MetadataOut = Field(description="The document's metadata, as set")


class SearchOut(BaseModel):
    query: str
    results: list[SearchHitOut]


class SectionOut(BaseModel):
    title: str
    level: int
    start: int
    end: int


class DocumentSummary(BaseModel):
    document_id: str
    title: str
    format: str
    length: int = Field(description="Characters of text")
    sha256: str = Field(description="sha256 of the UTF-8 text")
    version: str = Field(description="The document's version (its sha256): every citation carries it")
    passages: int
    sections: list[SectionOut] = Field(description="Headings in order: the section outline")
    metadata: MetadataOut = Field(description="The metadata set with the document (only the fields set)")


class DocumentOut(DocumentSummary):
    text: str = Field(description="The text exactly as indexed: every offset refers to it")


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    total: int
    offset: int
    limit: int


class PassageOut(BaseModel):
    passage_id: str
    document_id: str
    document_title: str
    section: str
    section_path: list[str]
    kind: str
    text: str
    start: int
    end: int
    document_metadata: MetadataOut


class DocumentWritten(BaseModel):
    document_id: str
    passages: int


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    documents: int
    passages: int
    model: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details: the body of every 4xx and 5xx."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
