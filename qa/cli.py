"""The ``qa`` command: index, ask, search, show, serve and eval.

Progress and messages go to stderr, data to stdout. Exit codes: 0 ok,
1 error (no index, bad input, unmet gate), 2 usage. Heavy libraries are
imported inside commands so that ``qa --help`` is instant.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.engine import Engine
    from qa.types import Answer

INDEX_DIR = click.option(
    "--index-dir", type=click.Path(path_type=Path), default=None, help="Index directory [default: QA_INDEX_DIR or index/]"
)


def _settings() -> Settings:
    from qa.config import get_settings

    return get_settings()


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def open_engine(index_dir: Path | None) -> Engine:
    """Load the embedding model and the index named by the settings (or ``index_dir``)."""
    from qa.embed import SentenceTransformerEmbedder
    from qa.engine import Engine
    from qa.errors import QAError
    from qa.index import load_index

    settings = _settings()
    try:
        embedder = SentenceTransformerEmbedder(settings.model, threads=settings.threads)
        index = load_index(index_dir or settings.index_dir, model=embedder.name)
    except QAError as exc:
        _fail(str(exc))
    return Engine(index, embedder, min_score=settings.min_score)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa-cite")
def main() -> None:
    """Answer questions over your documents with verbatim, verifiable citations."""


@main.command("index")
@click.argument("corpus_dir", required=False, type=click.Path(path_type=Path))
@INDEX_DIR
@click.option("--force", is_flag=True, help="Rebuild even if corpus and settings are unchanged.")
def index_command(corpus_dir: Path | None, index_dir: Path | None, force: bool) -> None:
    """Build the index from CORPUS_DIR [default: QA_CORPUS_DIR or corpus/]."""
    from qa.errors import QAError
    from qa.indexing import index_corpus

    settings = _settings()
    try:
        report = index_corpus(
            corpus_dir or settings.corpus_dir,
            index_dir or settings.index_dir,
            model=settings.model,
            threads=settings.threads,
            max_chars=settings.max_chars,
            force=force,
            log=lambda message: click.echo(message, err=True),
        )
    except QAError as exc:
        _fail(str(exc))
    if report.skipped:
        click.echo(f"Index is up to date ({report.n_documents} documents, {report.n_passages} passages).", err=True)
    else:
        click.echo(
            f"Indexed {report.n_documents} documents into {report.n_passages} passages "
            f"in {report.seconds:.1f} s: {report.path}",
            err=True,
        )


def _questions(args: tuple[str, ...]) -> Iterator[str]:
    if args == ("-",):
        for line in sys.stdin:
            if line.strip():
                yield line.rstrip("\r\n")
    else:
        yield from args


def answer_record(answer: Answer) -> dict[str, Any]:
    """The answer object of the output contract, as JSON-ready data."""
    return {
        "question": answer.question,
        "answerable": answer.answerable,
        "answer": answer.answer,
        "confidence": answer.confidence,
        "citations": [
            {
                "quote": c.quote,
                "document_id": c.document_id,
                "document_title": c.document_title,
                "section": c.section,
                "section_path": list(c.section_path),
                "start": c.start,
                "end": c.end,
                "passage_id": c.passage_id,
                "score": c.score,
            }
            for c in answer.citations
        ],
        "took_ms": answer.took_ms,
    }


def _print_answer(answer: Answer) -> None:
    click.echo(f"Q: {answer.question}")
    if answer.answerable:
        first = answer.citations[0]
        click.echo(f"A: {first.quote}")
        click.echo(f"   {' > '.join(first.section_path) or first.section} | {first.document_id} [{first.start}:{first.end}]")
        click.echo(f"   confidence {answer.confidence:.2f}")
        rest = answer.citations[1:]
    else:
        click.echo("A: No answer in these documents.")
        rest = answer.citations
    if rest:
        click.echo("   See also:" if answer.answerable else "   Closest passages:")
    for c in rest:
        click.echo(f"   - {c.quote}")
        click.echo(f"     {c.section} | {c.document_id} [{c.start}:{c.end}]")
    click.echo("")


@main.command("ask")
@click.argument("questions", nargs=-1, required=True)
@INDEX_DIR
@click.option("-k", "--top-k", "top_k", type=click.IntRange(1, 20), default=3, show_default=True, help="Citations.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question per line (JSON Lines).")
def ask_command(questions: tuple[str, ...], index_dir: Path | None, top_k: int, as_json: bool) -> None:
    """Answer QUESTIONS (or '-' to read one question per line from stdin)."""
    from qa.errors import QueryError

    engine = open_engine(index_dir)
    failed = False
    for question in _questions(questions):
        try:
            answer = engine.ask(question, top_k=top_k)
        except QueryError as exc:
            failed = True
            click.echo(f"Error: {exc}: {question[:80]!r}", err=True)
            if as_json:
                click.echo(json.dumps({"question": question, "error": str(exc)}, ensure_ascii=False))
            continue
        if as_json:
            click.echo(json.dumps(answer_record(answer), ensure_ascii=False))
        else:
            _print_answer(answer)
    sys.exit(1 if failed else 0)


@main.command("search")
@click.argument("query")
@INDEX_DIR
@click.option("-k", type=click.IntRange(1, 50), default=10, show_default=True, help="Passages to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search_command(query: str, index_dir: Path | None, k: int, as_json: bool) -> None:
    """List the passages that best match QUERY."""
    from qa.errors import QueryError

    engine = open_engine(index_dir)
    try:
        results = engine.search(query, k=k)
    except QueryError as exc:
        _fail(str(exc))
    records = [search_record(r) for r in results]
    if as_json:
        click.echo(json.dumps({"query": query, "results": records}, ensure_ascii=False))
        return
    for rank, record in enumerate(records, 1):
        click.echo(f"{rank}. {record['section']} | {record['document_id']} [{record['start']}:{record['end']}]")
        click.echo(f"   {record['text']}\n")


def search_record(result: Any) -> dict[str, Any]:
    """A search result as JSON-ready data."""
    passage = result.hit.passage
    return {
        "passage_id": passage.id,
        "document_id": passage.doc_id,
        "document_title": result.document.title,
        "section": passage.section_path[-1] if passage.section_path else result.document.title,
        "section_path": list(passage.section_path),
        "text": passage.text,
        "start": passage.start,
        "end": passage.end,
        "score": round(result.hit.score, 6),
        "highlights": [list(span) for span in result.highlights],
    }


@main.command("show")
@click.argument("document_id")
@INDEX_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the document record as JSON.")
def show_command(document_id: str, index_dir: Path | None, as_json: bool) -> None:
    """Print a document's text exactly as indexed."""
    from qa.errors import QAError
    from qa.index import load_index

    settings = _settings()
    try:
        index = load_index(index_dir or settings.index_dir)
        doc = index.documents[document_id]
    except KeyError:
        _fail(f"no document {document_id!r} in the index")
    except QAError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps({"id": doc.id, "title": doc.title, "text": doc.text}, ensure_ascii=False))
    else:
        sys.stdout.write(doc.text)
        sys.stdout.flush()
