"""Schemathesis on every operation of /openapi.json, every check, all four phases, with and without a key.

tests/api/test_api_serve.py runs two checks on the real model's server; this runs all of them but one
against a HashEmbedder server that requires keys for reads as well as writes: with the key (answers,
uploads, deletes, and the stateful phase chaining them through the API's links) and without it (every
operation must refuse, with a problem body that matches the schema; ``ignored_auth`` checks that the key
is really enforced). ``positive_data_acceptance`` is left out: the schema cannot express every input rule
(no control characters in a question, a supported suffix on a document id), so schema-valid requests
that break one rightly get 422. Bounded: a fixed seed, a fixed number of examples, loopback only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from reliability_helpers import API_KEY, live_server

pytestmark = pytest.mark.slow

ST = Path(sys.executable).with_name("st")


@pytest.mark.parametrize(("with_key", "examples"), [(True, 40), (False, 30)], ids=["with-key", "without-key"])
def test_every_operation_passes_every_check(
    with_key: bool, examples: int, make_app: Callable[..., FastAPI], tmp_path: Path, figure: Callable[..., None]
) -> None:
    app = make_app(api_keys=[API_KEY], require_key_for_reads=True)
    with live_server(app) as url:
        command = [
            str(ST), "run", f"{url}/openapi.json", "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(examples), "--seed", "20261125",
            "--generation-database", "none", "--request-timeout", "30", "--workers", "1", "--no-color",
        ]  # fmt: skip
        if with_key:
            command += ["--header", f"Authorization: Bearer {API_KEY}"]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    operations = sum(len(methods) for methods in app.openapi()["paths"].values())
    assert operations == 23  # the collections, verify and every content route at /v1/collections/{name}/...
    assert f"Selected: {operations}/{operations}" in result.stdout and f"Tested: {operations}" in result.stdout
    cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert cases is not None and cases.group(1) == cases.group(2), result.stdout[-2000:]
    figure(
        "schemathesis",
        **{f"cases_{'with' if with_key else 'without'}_key": int(cases.group(1)), "operations": operations},
    )
