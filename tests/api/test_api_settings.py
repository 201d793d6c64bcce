"""Settings from the environment, and their documentation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from qa.config import Settings, parse_rate_limit

ROOT = Path(__file__).resolve().parents[2]
ENV_NAMES = [f"QA_{name.upper()}" for name in Settings.model_fields]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b", ["a", "b"]),
        (" a , b ,, ", ["a", "b"]),
        ('["a", "b,c"]', ["a", "b,c"]),
        ("", []),
        ("single", ["single"]),
    ],
)
def test_list_settings_read_commas_or_json(monkeypatch, value: str, expected: list[str]) -> None:
    monkeypatch.setenv("QA_API_KEYS", value)
    monkeypatch.setenv("QA_CORS_ORIGINS", value)
    settings = Settings()
    assert settings.api_keys == expected and settings.cors_origins == expected


def test_keys_never_show_in_the_settings_repr(monkeypatch) -> None:
    monkeypatch.setenv("QA_API_KEYS", "very-secret")
    assert "very-secret" not in repr(Settings()) and "very-secret" not in str(Settings())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("60/minute", (60, 60.0)), ("5/second", (5, 1.0)), (" 1000 / hour ", (1000, 3600.0))],
)
def test_rate_limits(value: str, expected: tuple[int, float]) -> None:
    assert parse_rate_limit(value) == expected


@pytest.mark.parametrize("value", ["60", "60/min", "0/minute", "-1/second", "x/hour"])
def test_bad_rate_limits_are_refused_at_startup(monkeypatch, value: str) -> None:
    monkeypatch.setenv("QA_RATE_LIMIT", value)
    with pytest.raises(ValidationError, match="must look like '60/minute'"):
        Settings()


def test_blank_rate_limit_means_no_limit(monkeypatch) -> None:
    monkeypatch.setenv("QA_RATE_LIMIT", "")
    assert Settings().rate_limit is None


def test_every_setting_has_a_description() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_every_setting_is_in_the_api_docs() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert [name for name in ENV_NAMES if f"`{name}`" not in text] == []


def test_every_setting_is_in_the_readme() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [name for name in ENV_NAMES if name not in text] == []


def settings_table() -> str:
    """The markdown table of every setting, as docs/api.md (and the README) show it."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        else:
            shown = "unset" if default is None or default == [] else f"`{default}`"
        rows.append(f"| `QA_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)


def test_settings_table_in_the_api_docs_matches_the_code() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    # To regenerate: cd tests/api && python -c 'from test_api_settings import settings_table as t; print(t())'
    assert settings_table() in text
