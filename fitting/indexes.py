"""Indexes of the fitting corpora, built once per model and kept under the cache directory.

Embedding US Code Title 8 takes about ten minutes on two cores, so each corpus's index is written
with ``qa.storage.save_index`` under ``CACHE/<model>/<set>/<corpus>-<sha256 prefix>`` and loaded from
there while its documents and settings are unchanged. ``QA_FIT_CACHE`` moves the cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fitting.sets import ROOT, Corpus
from qa.build import build_index, corpus_sha256
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
    digest = corpus_sha256(corpus.documents)[:16]
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
