"""Settings, read from ``QA_*`` environment variables (pydantic-settings).

Core functions take plain arguments; only the CLI and the API read settings.
Every field's variable is documented in README.md (a test checks it).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from qa.defaults import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MIN_SCORE,
    DEFAULT_MODEL,
    DEFAULT_READER_BELOW,
    DEFAULT_READER_CANDIDATES,
    DEFAULT_READER_TOKENS,
)

# Seconds in each period a rate limit may name ("60/minute", "5/second", "1000/hour").
RATE_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")


def parse_rate_limit(value: str) -> tuple[int, float]:
    """Split a rate such as ``"60/minute"`` into (requests, seconds).

    Raises:
        ValueError: If the rate is not ``<count>/<second|minute|hour>`` with a positive count.
    """
    match = _RATE.match(value)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"rate limit {value!r} must look like '60/minute' (per second, minute or hour)")
    return int(match.group(1)), RATE_PERIODS[match.group(2)]


class Settings(BaseSettings):
    """Service and CLI settings."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    index_dir: Path = Field(default=Path("index"), description="Directory holding the built index")
    corpus_dir: Path = Field(
        default=Path("corpus"), description="Source documents indexed by `qa index` and `qa serve`"
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description=(
            "Embedding model: 'all-MiniLM-L6-v2' (shipped in a package; passages on torch, questions on its weights "
            "exported to onnxruntime), its int8 export on onnxruntime "
            "as 'all-MiniLM-L6-v2-int8' or, fastest, 'all-MiniLM-L6-v2-qint8' (onnx extra), "
            "or a local sentence-transformers folder"
        ),
    )
    threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description=(
            "Threads for the embedding model (1: steadiest when every core is busy; 2 on two cores answers one "
            "question at a time about 15% faster, and about 16% fewer a second at concurrency 8)"
        ),
    )
    min_score: float = Field(
        default=DEFAULT_MIN_SCORE,
        ge=0,
        le=1,
        description="An answer whose confidence (the chance it holds the answer) is below this is withheld",
    )
    reader_candidates: int = Field(
        default=DEFAULT_READER_CANDIDATES,
        ge=0,
        le=20,
        description="Best candidates the cross-encoder rereads before the answer is chosen (0 turns it off)",
    )
    reader_below: float = Field(
        default=DEFAULT_READER_BELOW,
        ge=0,
        le=1,
        description=(
            "The cross-encoder rereads only questions whose first answer's confidence is below this (1: every question)"
        ),
    )
    reader_tokens: int = Field(
        default=DEFAULT_READER_TOKENS,
        ge=16,
        le=512,
        description="Word pieces the cross-encoder reads of a question and a candidate together",
    )
    reader_quantized: bool = Field(
        default=True, description="Run the cross-encoder's matrix products in int8 (false: float arithmetic)"
    )
    reader_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Cores the cross-encoder may use for one question: in int8, candidates read at once",
    )
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS, ge=100, le=10_000, description="Upper bound on a passage's length"
    )
    quantize_vectors: bool = Field(
        default=False,
        description="Store the FAISS vectors in 8 bits (a quarter of the memory); shortlists are rescored exactly",
    )
    # NoDecode: the environment holds "a,b" (or a JSON list); _split_list parses either.
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,  # keys never reach a log line through a printed Settings
        description="Bearer keys that hold every scope: read, write and admin on every collection (comma-separated)",
    )
    keys_file: Path | None = Field(
        default=None,
        description=(
            "Keys file of scoped keys: one 'sha256:<hash> <scope>...' line per key (`qa keys add` writes one), "
            "reread when it changes"
        ),
    )
    require_key_for_reads: bool = Field(
        default=False,
        description="Require a key for every route that shows document content, in every collection (API and pages)",
    )
    public_url: str | None = Field(
        default=None,
        description="The service's public address (e.g. 'https://qa.example.org'), used in the demo page's snippet",
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description=(
            "Proxy addresses whose X-Forwarded-For and X-Forwarded-Proto are trusted (comma-separated, "
            "or '*'); unset trusts none"
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (comma-separated)"
    )
    rate_limit: str | None = Field(
        default=None, description="Requests per client address or API key, e.g. '60/minute'; unset means no limit"
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Largest JSON request body, in bytes")
    max_upload_bytes: int = Field(default=20 << 20, ge=1024, description="Largest uploaded file, in bytes")
    max_verify_bytes: int = Field(
        default=32 << 20, ge=1024, description="Largest POST /v1/verify body, in bytes (10,000 citations with quotes)"
    )
    max_document_passages: int = Field(
        default=500, ge=1, description="Most passages one uploaded document may make (413 beyond)"
    )
    max_write_texts: int = Field(
        default=1500,
        ge=1,
        description="Most texts one write may embed: passages plus their sentences, list items and rows (413 beyond)",
    )
    parse_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Seconds an upload may take to parse; the parser is stopped after"
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds before a request is answered with 503"
    )
    debug_delay_ms: int = Field(
        default=0, ge=0, le=10_000, description="Test-only: delay every /v1/ask by this many ms"
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept a JSON list or comma-separated text; blank items are dropped."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"public URL {value!r} must be an http(s) address without query or fragment")
        if any(c in url for c in "\"'<> "):
            raise ValueError(f"public URL {value!r} must not contain quotes, spaces or angle brackets")
        return url

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded(cls, value: str | None) -> str | None:
        return value.strip() if value is not None and value.strip() else None

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_rate_limit(value)
            return value.strip()
        return None


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
