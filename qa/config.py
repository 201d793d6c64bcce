"""Settings, read from ``QA_*`` environment variables (pydantic-settings).

Core functions take plain arguments; only the CLI and the API read settings.
Every field's variable is documented in README.md (a test checks it).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.chunk import DEFAULT_MAX_CHARS
from qa.embed import DEFAULT_MODEL
from qa.engine import DEFAULT_MIN_SCORE


class Settings(BaseSettings):
    """Service and CLI settings."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Directory holding the built index")
    corpus_dir: Path = Field(Path("corpus"), description="Source documents indexed by `qa index` and `qa serve`")
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: 'all-MiniLM-L6-v2' (shipped in a package) or a local sentence-transformers folder",
    )
    threads: int = Field(2, ge=1, le=256, description="Torch threads for the embedding model (this machine has 2 cores)")
    min_score: float = Field(
        DEFAULT_MIN_SCORE, ge=0, le=2, description="Evidence below this answers 'not in these documents'"
    )
    max_chars: int = Field(DEFAULT_MAX_CHARS, ge=100, le=10_000, description="Upper bound on a passage's length")
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys allowed to add and delete documents")
    require_key_for_reads: bool = Field(False, description="Require a key for read endpoints too")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API from a browser")
    rate_limit: str | None = Field(None, description="Requests per client, e.g. '60/minute'; unset means no limit")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest JSON request body, in bytes")
    max_upload_bytes: int = Field(20 << 20, ge=1024, description="Largest uploaded file, in bytes")
    request_timeout: float = Field(30.0, gt=0, le=600, description="Seconds before a request is answered with 503")
    debug_delay_ms: int = Field(0, ge=0, le=10_000, description="Test-only: delay every /v1/ask by this many ms")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
