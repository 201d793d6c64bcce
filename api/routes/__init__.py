"""Thin routes: parse the request, call ``qa`` (in a thread), map the result to a response model."""

from __future__ import annotations

from typing import Any

from api.schemas import ProblemOut


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses: each is a problem-details body.

    ``api.main`` moves them from application/json to application/problem+json.
    """
    return {status: {"model": ProblemOut} for status in statuses}
