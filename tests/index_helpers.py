"""Where the files of an index on disk are, for tests that inspect or damage them (layout: ``qa.storage``);
and an embedder that records what it embeds, for tests of what a write embeds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from qa.embed import HashEmbedder, Vectors


def segment_names(index_dir: Path) -> list[str]:
    """The segments the current commit names, in its order."""
    commit = json.loads((index_dir / "current").read_text(encoding="utf-8"))
    return [segment["name"] for segment in commit["segments"]]


def only_segment(index_dir: Path) -> Path:
    """The directory of the one segment of an index built in one run."""
    (name,) = segment_names(index_dir)
    return index_dir / "segments" / name


def segments_on_disk(index_dir: Path) -> list[str]:
    """Every directory under ``segments/``, named or not, finished or not."""
    folder = index_dir / "segments"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def named_by_commits(index_dir: Path) -> list[str]:
    """Every segment some commit on disk names (the current one and those kept for readers)."""
    names = {
        segment["name"]
        for path in (index_dir / "commits").iterdir()
        for segment in json.loads(path.read_text(encoding="utf-8"))["segments"]
    }
    return sorted(names)


class RecordingEmbedder(HashEmbedder):
    """A HashEmbedder that remembers every passage text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        self.embedded.extend(texts)
        return super().embed_passages(texts)
