"""Indexes of the fitting corpora, built once per model and kept under the cache directory.

Embedding US Code Title 8 takes about ten minutes on two cores, so each corpus's index is written
with ``qa.storage.save_index`` under ``CACHE/<model>/<set>/<corpus>-<max chars>-<sha256 prefix>`` (of the
documents and the build's settings) and loaded from there while both are unchanged. ``QA_FIT_CACHE`` moves the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from fitting.sets import ROOT, Corpus
from qa.build import build_index, corpus_sha256, settings_fingerprint
from qa.defaults import DEFAULT_MAX_CHARS
from qa.embed import Embedder
from qa.errors import IndexFormatError, IndexMissingError
from qa.index import VectorIndex
from qa.storage import load_index, save_index, writer_lock
from qa.writes import migrate_format_1

CACHE = Path(os.environ.get("QA_FIT_CACHE", ROOT / ".cache" / "fit"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def index_of(set_name: str, corpus: Corpus, embedder: Embedder) -> VectorIndex:
    """The index of ``corpus`` with ``embedder``: loaded from the cache, or built and cached."""
    # The settings a build depends on (chunker and tokenizer versions among them) are in the key: an index
    # built before either changed is built again rather than loaded with the old passages or tokens.
    settings = json.dumps(settings_fingerprint(embedder.name, DEFAULT_MAX_CHARS), sort_keys=True)
    digest = hashlib.sha256(f"{corpus_sha256(corpus.documents)} {settings}".encode()).hexdigest()[:16]
    folder = CACHE / embedder.name / set_name / f"{corpus.name}-{DEFAULT_MAX_CHARS}-{digest}"
    try:
        return load_index(folder, model=embedder.name)
    except IndexMissingError:
        pass
    except IndexFormatError:  # cached by a version before segments: converted once, its vectors kept
        with writer_lock(folder):
            migrate_format_1(folder)
        return load_index(folder, model=embedder.name)
    log(f"{set_name}/{corpus.name}: embedding {len(corpus.documents)} documents (cached in {folder})")
    index = build_index(corpus.documents, embedder, max_chars=DEFAULT_MAX_CHARS)
    folder.mkdir(parents=True, exist_ok=True)
    with writer_lock(folder):
        save_index(index, folder)
    return index
