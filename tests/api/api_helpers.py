"""Helpers for the HTTP API tests: the shared HTTP helpers and the API key their apps use."""

from __future__ import annotations

from http_helpers import assert_problem, free_port, live_server

API_KEY = "test-key"

__all__ = ["API_KEY", "assert_problem", "free_port", "live_server"]
