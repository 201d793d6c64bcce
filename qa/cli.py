"""The ``qa`` command: index, ask, search, show, serve and eval.

Progress and messages go to stderr, data to stdout. Exit codes: 0 ok,
1 error (no index, bad input, unmet gate), 2 usage. Heavy libraries are
imported inside commands so that ``qa --help`` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from qa.defaults import MAX_ANSWERS
from qa.records import answer_record, search_record
from qa.types import DISTINCT, Distinct

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.engine import Engine
    from qa.types import Answer, Document
    from qa.verify import Cited

INDEX_DIR = click.option(
    "--index-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Index directory [default: QA_INDEX_DIR or index/]",
)
COLLECTION = click.option(
    "--collection",
    default="default",
    show_default=True,
    help="Collection in the index directory (qa index makes it if it is new).",
)
FILTER = click.option(
    "--filter",
    "filter_json",
    default=None,
    metavar="JSON",
    help='Only documents whose metadata match, e.g. \'{"tags": "policy"}\' (docs/api.md, "Filters").',
)
DISTINCT_ANSWERS = click.option(
    "--distinct",
    type=click.Choice(DISTINCT),
    default="quotes",
    show_default=True,
    help="What makes several answers distinct: their quotes (two may share a passage) or their passages.",
)


def _settings() -> Settings:
    from qa.config import get_settings

    return get_settings()


def _note(message: str) -> None:
    """A message for the user: on stderr, so that stdout holds only data."""
    click.echo(message, err=True)


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def index_root(index_dir: Path | None) -> Path:
    """``index_dir`` (or the settings' index directory), unless a file is in the way: that ends the command."""
    from qa.errors import QAError
    from qa.storage import check_index_dir

    root = index_dir or _settings().index_dir
    try:
        check_index_dir(root)
    except QAError as exc:
        _fail(str(exc))
    return root


def collection_index(index_dir: Path | None, collection: str, *, create: bool = False) -> Path:
    """The index folder of ``collection`` in ``index_dir`` (or the settings' index directory).

    With ``create``, a collection that does not exist yet is made (empty: ``qa index`` fills it).
    """
    from qa.collections import Collection, collection_dir, create_collection, read_collection
    from qa.errors import CollectionNotFound, QAError

    root = index_root(index_dir)
    try:
        try:
            read_collection(root, collection)
        except CollectionNotFound:
            if not create:
                raise
            create_collection(root, Collection(collection), write_index=lambda folder: None)
            click.echo(f"Made the collection {collection!r}.", err=True)
        return collection_dir(root, collection)
    except QAError as exc:
        _fail(str(exc))


def _filter(engine: Engine, filter_json: str | None) -> Any:
    """The parsed ``--filter`` (None without one); bad JSON or a bad filter ends the command."""
    from qa.errors import QAError

    if filter_json is None:
        return None
    from qa.filters import filter_json as decoded

    try:
        return engine.parse_filter(decoded(filter_json))
    except QAError as exc:
        _fail(f"--{exc}")


def open_engine(index_dir: Path | None, collection: str = "default") -> Engine:
    """Load the embedding model and the index named by the settings (or ``index_dir``) and ``collection``."""
    from qa.embedders import load_embedder
    from qa.engine import engine_of
    from qa.errors import QAError
    from qa.storage import load_index

    settings = _settings()
    folder = collection_index(index_dir, collection)
    try:
        # The index first: a missing or damaged one is reported without waiting for the model.
        index = load_index(folder, model=settings.model)
        embedder = load_embedder(settings.model, threads=settings.threads)
        return engine_of(index, embedder, settings)
    except QAError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa-cite")
def main() -> None:
    """Answer questions over your documents with verbatim, verifiable citations."""


@main.command("index")
@click.argument("corpus_dir", required=False, type=click.Path(path_type=Path))
@INDEX_DIR
@COLLECTION
@click.option("--force", is_flag=True, help="Rebuild even if corpus and settings are unchanged.")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
    help="Parse, chunk and embed on the Ray cluster at ADDRESS ('auto': the one this machine joined; "
    "no address: start one here). Needs the ray extra.",
)  # fmt: skip
@click.option(
    "--actors", type=click.IntRange(1, 4096), default=2, show_default=True, help="With --ray: embedding actors."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 65536),
    default=256,
    show_default=True,
    help="With --ray: texts per embedding call.",
)
def index_command(
    corpus_dir: Path | None,
    index_dir: Path | None,
    collection: str,
    force: bool,
    ray_address: str | None,
    actors: int,
    batch_size: int,
) -> None:
    """Build the index from CORPUS_DIR [default: QA_CORPUS_DIR or corpus/].

    A file NAME may have its metadata in NAME.meta.json beside it; Markdown files may also have YAML
    front matter.
    """
    from qa.collections import check_name
    from qa.errors import QAError
    from qa.indexing import Runner, index_corpus, read_corpus, tqdm_progress

    settings = _settings()
    corpus_dir = corpus_dir or settings.corpus_dir
    index_root(index_dir)  # a file in the way is reported before the corpus is read
    try:
        check_name(collection)
        runner: Runner | None = None
        if ray_address is not None:
            from qa.cluster import RayRunner

            runner = RayRunner(settings.model, address=ray_address, actors=actors, batch_size=batch_size)
        # The corpus before the collection: a missing or empty corpus leaves no empty collection behind.
        read = read_corpus(corpus_dir, runner=runner, log=_note)
        report = index_corpus(
            corpus_dir,
            collection_index(index_dir, collection, create=True),
            read=read,
            model=settings.model,
            threads=settings.threads,
            max_chars=settings.max_chars,
            quantize=settings.quantize_vectors,
            force=force,
            log=_note,
            progress=tqdm_progress(),
            runner=runner,
        )
    except QAError as exc:
        _fail(str(exc))
    if report.skipped:
        click.echo(f"Index is up to date ({report.n_documents} documents, {report.n_passages} passages).", err=True)
    else:
        resumed = f", {report.resumed} taken up from an interrupted run" if report.resumed else ""
        merged = f", {report.merges} merge(s)" if report.merges else ""
        click.echo(
            f"Indexed {report.n_documents} documents into {report.n_passages} passages in {report.seconds:.1f} s "
            f"({report.added} added or changed, {report.removed} removed{resumed}; "
            f"{report.segments} segment(s){merged}): {report.path}",
            err=True,
        )


def _printable(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD: bytes of an argument or a line that were not UTF-8 reach
    Python as surrogates, which no UTF-8 output can hold (the question is refused; its error line is printed)."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _questions(args: tuple[str, ...]) -> Iterator[str]:
    if args == ("-",):
        for line in sys.stdin:
            if line.strip():
                yield line.rstrip("\r\n")
    else:
        yield from args


def _print_answer(answer: Answer) -> None:
    click.echo(f"Q: {answer.question}")
    if answer.answerable:
        first = answer.citations[0]
        click.echo(f"A: {first.quote}")
        click.echo(
            f"   {' > '.join(first.section_path) or first.section} | {first.document_id} [{first.start}:{first.end}]"
        )
        click.echo(f"   confidence {answer.confidence:.2f}")
        for number, other in enumerate(answer.answers[1:], 2):
            where = other.citations[0]
            click.echo(f"A{number}: {other.answer}")
            click.echo(f"   {' > '.join(where.section_path) or where.section} | {where.document_id} "
                       f"[{where.start}:{where.end}]")  # fmt: skip
            click.echo(f"   confidence {other.confidence:.2f}")
        shown = {(a.citations[0].document_id, a.citations[0].start, a.citations[0].end) for a in answer.answers}
        rest = tuple(c for c in answer.citations[1:] if (c.document_id, c.start, c.end) not in shown)
    else:
        click.echo(f"A: No answer in these documents ({answer.reason}).")
        rest = answer.citations
    if rest:
        click.echo("   See also:" if answer.answerable else "   Closest passages:")
    for c in rest:
        click.echo(f"   - {c.quote}")
        click.echo(f"     {' > '.join(c.section_path) or c.section} | {c.document_id} [{c.start}:{c.end}]")
    click.echo("")


@main.command("ask")
@click.argument("questions", nargs=-1, required=True)
@INDEX_DIR
@COLLECTION
@FILTER
@click.option("-k", "--top-k", "top_k", type=click.IntRange(1, 20), default=3, show_default=True, help="Citations.")
@click.option(
    "--answers",
    type=click.IntRange(1, MAX_ANSWERS),
    default=1,
    show_default=True,
    help="Distinct answers, best first.",
)
@DISTINCT_ANSWERS
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question per line (JSON Lines).")
def ask_command(
    questions: tuple[str, ...],
    index_dir: Path | None,
    collection: str,
    filter_json: str | None,
    top_k: int,
    answers: int,
    distinct: Distinct,
    as_json: bool,
) -> None:
    """Answer QUESTIONS (or '-' to read one question per line from stdin)."""
    from qa.errors import QueryError

    engine = open_engine(index_dir, collection)
    where = _filter(engine, filter_json)
    failed = False
    for question in _questions(questions):
        try:
            answer = engine.ask(question, top_k=top_k, where=where, answers=answers, distinct=distinct)
        except QueryError as exc:
            failed = True
            click.echo(f"Error: {exc}: {question[:80]!r}", err=True)
            if as_json:
                click.echo(json.dumps({"question": _printable(question), "error": str(exc)}, ensure_ascii=False))
            continue
        if as_json:
            click.echo(json.dumps(answer_record(answer), ensure_ascii=False))
        else:
            _print_answer(answer)
    sys.exit(1 if failed else 0)


@main.command("search")
@click.argument("query")
@INDEX_DIR
@COLLECTION
@FILTER
@click.option("-k", type=click.IntRange(1, 50), default=10, show_default=True, help="Passages to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search_command(
    query: str, index_dir: Path | None, collection: str, filter_json: str | None, k: int, as_json: bool
) -> None:
    """List the passages that best match QUERY."""
    from qa.errors import QueryError

    engine = open_engine(index_dir, collection)
    where = _filter(engine, filter_json)
    try:
        results = engine.search(query, k=k, where=where)
    except QueryError as exc:
        _fail(str(exc))
    records = [search_record(r) for r in results]
    if as_json:
        click.echo(json.dumps({"query": query, "results": records}, ensure_ascii=False))
        return
    for rank, record in enumerate(records, 1):
        click.echo(f"{rank}. {record['section']} | {record['document_id']} [{record['start']}:{record['end']}]")
        click.echo(f"   {record['text']}\n")


@main.command("show")
@click.argument("document_id")
@INDEX_DIR
@COLLECTION
@click.option("--json", "as_json", is_flag=True, help="Print the document record as JSON.")
def show_command(document_id: str, index_dir: Path | None, collection: str, as_json: bool) -> None:
    """Print a document's text exactly as indexed."""
    from qa.errors import QAError
    from qa.metadata import metadata_record
    from qa.storage import load_index

    folder = collection_index(index_dir, collection)
    try:
        index = load_index(folder)
        doc = index.documents[document_id]
    except KeyError:
        _fail(f"no document {document_id!r} in the index")
    except QAError as exc:
        _fail(str(exc))
    if as_json:
        record = {"id": doc.id, "title": doc.title, "text": doc.text, "metadata": metadata_record(doc.metadata)}
        click.echo(json.dumps(record, ensure_ascii=False))
    else:
        sys.stdout.write(doc.text)
        sys.stdout.flush()


@main.command("verify")
@click.argument("answers", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@INDEX_DIR
@COLLECTION
def verify_command(answers: Path, index_dir: Path | None, collection: str) -> None:
    """Check the citations of stored answers (JSON Lines, as `qa ask --json` prints them; '-' for stdin).

    Prints one line per answer: its question and, for each citation in order, whether its quote is still
    at its offsets (current), elsewhere in the document (moved, with the new offsets) or gone.

    A line that is not an answer with citations (each a document_id, a non-empty quote, and start and end
    offsets) is reported on stderr, the rest are checked, and the exit code is 1. The line `qa ask --json`
    prints for a question it refused ({"question": ..., "error": ...}) has nothing to check: it is noted
    on stderr and skipped, and leaves the exit code 0.
    """
    from qa.errors import QAError
    from qa.storage import load_index

    folder = collection_index(index_dir, collection)
    try:
        index = load_index(folder)
    except QAError as exc:
        _fail(str(exc))
    try:
        # Bytes, decoded line by line: a line that is not UTF-8 is one bad line, not the end of the run.
        stream = sys.stdin.buffer if str(answers) == "-" else answers.open("rb")
    except OSError as exc:
        _fail(f"cannot read {answers}: {exc.strerror or exc}")
    with stream:
        checked = [_verify_line(raw, number, index.documents) for number, raw in enumerate(stream, 1)]
    sys.exit(0 if all(checked) else 1)


def _verify_line(raw: bytes, number: int, documents: Mapping[str, Document]) -> bool:
    """Print the verdicts of the answer on line ``number``; False if the line is not an answer with citations."""
    from qa.verify import verify

    if not raw.strip():
        return True
    try:
        record = _answer_record(raw, first=number == 1)
        if _refused(record):
            _note(f"line {number}: a question `qa ask` refused ({_printable(record['error'])}), skipped")
            return True
        cited = _citations(record)
    except ValueError as exc:
        _note(f"Error: line {number} is not an answer with citations ({exc})")
        return False
    results = [{"status": v.status, "start": v.start, "end": v.end, "document_version": v.document_version}
               for v in verify(cited, documents.get)]  # fmt: skip
    question = record.get("question")
    question = _printable(question) if isinstance(question, str) else question
    click.echo(json.dumps({"question": question, "results": results}, ensure_ascii=False))
    return True


def _answer_record(raw: bytes, *, first: bool) -> dict[str, Any]:
    """The JSON object on one line of answers (a byte-order mark may open the first).

    Raises:
        ValueError: Saying why the line holds no JSON object.
    """
    from qa.jsontext import decode

    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    record = decode(text, "the line")
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    return record


def _refused(record: dict[str, Any]) -> bool:
    """Whether ``record`` is the line `qa ask --json` prints for a question it refused."""
    return "citations" not in record and isinstance(record.get("error"), str)


def _citations(record: dict[str, Any]) -> list[Cited]:
    """The citations of an answer record, each checked as `POST /v1/verify` checks it.

    Raises:
        ValueError: Naming the first citation that breaks a rule, and the rule.
    """
    from qa.verify import Cited

    citations = record.get("citations")
    if not isinstance(citations, list):
        raise ValueError("citations must be a list")
    cited = []
    for number, c in enumerate(citations, 1):
        if not isinstance(c, dict):
            raise ValueError(f"citation {number} is not a JSON object")
        if not isinstance(c.get("document_id"), str):
            raise ValueError(f"citation {number}: document_id must be a string")
        if not isinstance(c.get("quote"), str) or not c["quote"]:
            raise ValueError(f"citation {number}: quote must be a non-empty string")
        for key in ("start", "end"):
            # type() rather than isinstance: True is no offset; JSON's Infinity and NaN are floats, never offsets
            if type(c.get(key)) is not int or c[key] < 0:
                raise ValueError(f"citation {number}: {key} must be a non-negative integer")
        cited.append(Cited(c["document_id"], c["quote"], c["start"], c["end"]))
    return cited


@main.group("keys")
def keys_group() -> None:
    """Manage the scoped API keys of QA_KEYS_FILE."""


@keys_group.command("add")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="read:NAME, read:*, write:NAME, write:* or admin (repeat for several).",
)
@click.option("--note", default=None, help="A note kept beside the key's hash (who holds it).")
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="[default: QA_KEYS_FILE]",
)
def keys_add_command(scopes: tuple[str, ...], note: str | None, keys_file: Path | None) -> None:
    """Make a key with SCOPES, store its hash in the keys file and print the key (shown only this once)."""
    from qa.errors import QAError
    from qa.keys import add_key

    path = keys_file or _settings().keys_file
    if path is None:
        _fail("no keys file: give --keys-file or set QA_KEYS_FILE")
    try:
        key = add_key(path, scopes, note)
    except (ValueError, QAError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"Added a key with {', '.join(scopes)} to {path}; a running server takes it within a second.", err=True)
    click.echo(key)


_GATES = {
    "min_containment": "containment",
    "min_containment_top3": "containment_top3",
    "min_recall5": "recall@5",
    "min_section_accuracy": "section_accuracy",
    "min_quote_exactness": "quote_exactness",
    "min_abstention_recall": "abstention_recall",
}


@main.command("eval")
@click.argument("gold", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "squad"]), default=None, help="[default: by suffix]")
@INDEX_DIR
@COLLECTION
@click.option(
    "--corpus", "corpus_dir", type=click.Path(file_okay=False, path_type=Path), help="Index this corpus in memory."
)
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25", "all"]), default="hybrid", show_default=True)
@click.option("-k", "top_k", type=click.IntRange(1, 20), default=3, show_default=True, help="Citations per answer.")
@DISTINCT_ANSWERS
@click.option("--json", "as_json", is_flag=True, help="Print the aggregates as JSON.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report here.")
@click.option("--calibrate", is_flag=True, help="Propose the abstention threshold (<= 2% answerable refused).")
@click.option("--min-containment", type=float, help="Fail unless hybrid containment reaches this.")
@click.option("--min-containment-top3", type=float, help="Fail unless containment in the top 3 citations reaches this.")
@click.option("--min-recall5", type=float, help="Fail unless recall@5 reaches this.")
@click.option("--min-section-accuracy", type=float, help="Fail unless section accuracy reaches this.")
@click.option("--min-quote-exactness", type=float, help="Fail unless quote exactness reaches this.")
@click.option("--min-abstention-recall", type=float, help="Fail unless this share of unanswerable questions abstains.")
def eval_command(
    gold: Path | None,
    fmt: str | None,
    index_dir: Path | None,
    collection: str,
    corpus_dir: Path | None,
    mode: str,
    top_k: int,
    distinct: Distinct,
    as_json: bool,
    report: Path | None,
    calibrate: bool,
    **gates: float | None,
) -> None:
    """Score answers against GOLD [default: tests/data/gold.jsonl] (JSON Lines or SQuAD JSON)."""
    from tqdm import tqdm

    from qa.evaluate import calibrate as propose_threshold
    from qa.evaluate import evaluate
    from qa.files import write_durably
    from qa.report import render_report

    gold = gold or _default_gold()
    if report is not None:
        _check_report_folder(report)
    engine, items = _eval_setup(gold, fmt, index_dir, collection, corpus_dir)
    modes = ["bm25", "dense", "hybrid"] if mode == "all" else [mode]
    results = []
    for name in modes:
        with tqdm(total=len(items), desc=f"eval {name}", file=sys.stderr, disable=None) as bar:
            done = evaluate(engine, items, mode=name, k=top_k, distinct=distinct, progress=lambda _: bar.update(1))  # type: ignore[arg-type]  # name is a Mode
            results.append(done)
    main_result = results[-1]
    threshold = None
    if calibrate:
        threshold, scores = propose_threshold(main_result.items)
        click.echo(
            f"Proposed QA_MIN_SCORE={threshold:.4f} (abstention F1 {scores.f1:.3f}, false refusals "
            f"{scores.false_refusal_rate:.3f}); current {engine.min_score}",
            err=True,
        )
        for label, flag in (("answerable", False), ("unanswerable", True)):
            values = sorted(round(r.evidence, 3) for r in main_result.items if r.item.unanswerable is flag)
            click.echo(f"  {label} scores: {values}", err=True)
    if as_json:
        payload = {r.mode: r.aggregate for r in results}
        click.echo(json.dumps({"gold": str(gold), "modes": payload, "threshold": threshold}, indent=2))
    else:
        _print_table(results)
    written = True
    if report:
        page = render_report(f"qa eval: {gold.name}", results, threshold or engine.min_score)
        try:
            write_durably(report, page.encode("utf-8"))
            _note(f"Report written to {report}")
        except OSError as exc:  # checked before the run, but the folder may have gone since: the gates still count
            written = False
            _note(f"Error: the report could not be written to {report} ({exc.strerror or exc})")
    unmet = [
        f"{_GATES[name]} {main_result.aggregate[_GATES[name]]:.3f} < {floor}"
        for name, floor in gates.items()
        if floor is not None and main_result.aggregate[_GATES[name]] < floor
    ]
    if unmet:
        _fail("gate not met: " + "; ".join(unmet))
    if not written:
        sys.exit(1)


# `qa eval`'s gold set when none is given: the repository's, relative to the current directory.
DEFAULT_GOLD = Path("tests/data/gold.jsonl")


def _default_gold() -> Path:
    """DEFAULT_GOLD, or a usage error (as for a GOLD that does not exist) outside the repository root."""
    if not DEFAULT_GOLD.is_file():
        raise click.BadParameter(
            f"no GOLD given, and the default {DEFAULT_GOLD} is not in {Path.cwd()}: pass GOLD",
            param_hint="'[GOLD]'",
        )
    return DEFAULT_GOLD


def _check_report_folder(report: Path) -> None:
    """A usage error unless ``report`` can be written, checked before the run rather than after it."""
    folder = report.parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param_hint="'--report'")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"folder {folder} is not writable", param_hint="'--report'")


def _eval_setup(
    gold: Path, fmt: str | None, index_dir: Path | None, collection: str, corpus_dir: Path | None
) -> tuple[Any, list[Any]]:
    from qa.build import build_index
    from qa.embedders import load_embedder
    from qa.engine import engine_of
    from qa.errors import QAError
    from qa.evaluate import check_questions
    from qa.gold import load_jsonl, load_squad
    from qa.indexing import read_corpus

    settings = _settings()
    fmt = fmt or ("squad" if gold.suffix.lower() == ".json" else "jsonl")
    try:
        documents: list[Document] | None = None
        if fmt == "squad":
            documents, items = load_squad(gold)
        else:
            items = load_jsonl(gold)
        if not items:
            _fail(f"{gold} holds no questions")
        check_questions(items)  # before the model loads and the corpus is indexed
        if fmt != "squad" and corpus_dir is not None:
            # As `qa index` reads it: unreadable files are reported, and no readable document is an error
            # (never a quiet fall back to the index on disk, whose figures would pass for this corpus's).
            documents = read_corpus(corpus_dir, log=_note)[0]
        if documents is not None:
            embedder = load_embedder(settings.model, threads=settings.threads)
            click.echo(f"Indexing {len(documents)} documents in memory...", err=True)
            index = build_index(documents, embedder, max_chars=settings.max_chars, quantize=settings.quantize_vectors)
            engine = engine_of(index, embedder, settings)
        else:
            engine = open_engine(index_dir, collection)
    except QAError as exc:
        _fail(str(exc))
    return engine, items


def _print_table(results: list[Any]) -> None:
    from qa.report import _KEYS

    click.echo(f"{'metric':<22}" + "".join(f"{r.mode:>10}" for r in results))
    for key in ("n", *_KEYS):
        click.echo(f"{key:<22}" + "".join(f"{r.aggregate.get(key, 0):>10.3f}" for r in results))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options that depend on the settings.

    ``X-Forwarded-For`` decides a client's address, hence its rate-limit bucket: it is trusted only from
    the proxies named in QA_FORWARDED_ALLOW_IPS, never by default (uvicorn's own default trusts 127.0.0.1,
    so any local client could pick its bucket).
    """
    trusted = settings.forwarded_allow_ips
    return {"proxy_headers": trusted is not None, "forwarded_allow_ips": trusted or ""}


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to bind.")
@INDEX_DIR
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
    help="Serve as a Ray Serve application on the cluster at ADDRESS ('auto': the one this machine joined; "
    "no address: start one here), the index split over shards. Needs the ray extra.",
)  # fmt: skip
@click.option("--shards", type=click.IntRange(1, 1024), default=2, show_default=True, help="With --ray: shards.")
@click.option(
    "--shard-replicas",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="With --ray: replicas per shard.",
)
@click.option(
    "--answer-replicas", type=click.IntRange(1, 1024), default=2, show_default=True,
    help="With --ray: replicas that embed, merge, extract and cite.",
)  # fmt: skip
def serve_command(
    host: str,
    port: int,
    index_dir: Path | None,
    workers: int,
    ray_address: str | None,
    shards: int,
    shard_replicas: int,
    answer_replicas: int,
) -> None:
    """Serve the HTTP API, building the index of QA_CORPUS_DIR first if there is none."""
    import signal
    from functools import partial

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.main import create_app
    from qa.embedders import load_embedder
    from qa.errors import IndexMissingError, QAError
    from qa.indexing import Runner, index_corpus, tqdm_progress
    from qa.storage import current_commit

    settings = _settings()
    if index_dir is not None:
        settings = settings.model_copy(update={"index_dir": index_dir})
    index_root(settings.index_dir)
    embedder = None
    try:
        current_commit(settings.index_dir)
    except IndexMissingError:
        click.echo(
            f"No index in {settings.index_dir}: building one there from the documents in {settings.corpus_dir} "
            "(QA_CORPUS_DIR)",
            err=True,
        )
        try:
            embedder = load_embedder(settings.model, threads=settings.threads)
            runner: Runner | None = None
            if ray_address is not None:
                from qa.cluster import RayRunner

                runner = RayRunner(settings.model, address=ray_address)
            index_corpus(settings.corpus_dir, settings.index_dir, embedder=embedder, max_chars=settings.max_chars,
                         quantize=settings.quantize_vectors, log=lambda message: click.echo(message, err=True),
                         progress=tqdm_progress(), runner=runner)  # fmt: skip
        except QAError as exc:
            _fail(str(exc))
    if ray_address is not None:
        from qa.cluster import ray_module

        try:
            ray_module()
        except QAError as exc:
            _fail(str(exc))
        from api.cluster import ClusterOptions, serve_on_ray

        serve_on_ray(settings, ray_address, host, port, ClusterOptions(shards, shard_replicas, answer_replicas))
        return
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: exit 0 then, not -15.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # Every worker builds its app from these settings (the factory and its arguments travel to each worker
    # process); one process serves the model that built the index rather than load it again.
    factory = partial(create_app, settings, embedder=embedder) if workers == 1 else partial(create_app, settings)
    config = uvicorn.Config(factory, factory=True, host=host, port=port, workers=workers, log_level="info",
                            timeout_graceful_shutdown=10, **uvicorn_options(settings))  # fmt: skip
    if workers == 1:
        uvicorn.Server(config).run()
    else:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
