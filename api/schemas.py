"""Request and response bodies: pydantic at the edge, one model per direction.

Request models forbid unknown fields and coerce nothing (``strict``): ``"3"``
is not a ``top_k``. Questions run through ``qa.engine.clean_question`` inside
validation, so every input rule fails as an ordinary 422 with ``errors``.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from qa.engine import MAX_QUESTION_CHARS, clean_question
from qa.errors import QueryError
from qa.ingest import check_document_id
from qa.types import Citation

MAX_TITLE_CHARS = 500


def reject_surrogates(value: object, info: ValidationInfo) -> object:
    """Name a lone surrogate (JSON allows "\\ud800") before pydantic's str check fails vaguely on it."""
    if isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
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


Unicode = BeforeValidator(reject_surrogates)
Question = Annotated[
    str, Field(min_length=1, description=f"1 to {MAX_QUESTION_CHARS} characters after trimming"), Unicode
]
DocumentId = Annotated[str, AfterValidator(check_document_id), Unicode]
Title = Annotated[str | None, AfterValidator(check_title), Unicode]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AskRequest(_Request):
    """``POST /v1/ask``."""

    question: Annotated[Question, AfterValidator(check_question)]
    top_k: int = Field(3, ge=1, le=20, description="Citations to return")


class DocumentIn(_Request):
    """``POST /v1/documents`` as JSON: the text is parsed by the id's suffix."""

    document_id: DocumentId = Field(description="Relative path such as 'policies/retention.md'", examples=["notes.md"])
    text: Annotated[str, Unicode] = Field(min_length=1, description="The document's content")
    title: Title = Field(None, description="Title; default: the first heading")


class UploadFields(_Request):
    """The form fields that come with a multipart upload."""

    document_id: DocumentId
    title: Title = None


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
    passages: int
    sections: list[SectionOut] = Field(description="Headings in order: the section outline")


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
