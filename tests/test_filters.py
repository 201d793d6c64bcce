"""Tests for ``qa.filters``: the filter language, its checks against a schema, and matching.

A hand-made table pins each operator on a small corpus; Hypothesis then checks ``matches`` against a plain
recursive evaluator of the raw JSON (written here, apart from the module) and the algebraic laws.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.errors import QueryError
from qa.filters import (
    AllOf,
    AnyOf,
    Condition,
    DocumentTable,
    Filter,
    FilterError,
    Not,
    parse_filter,
    schema_of,
)
from qa.metadata import Metadata, clean_date

DOCS: dict[str, Metadata] = {
    "a.md": {
        "title": "Retention policy",
        "tags": ("policy", "hr"),
        "date": "2024-05-01",
        "language": "en",
        "year": 2024,
        "draft": False,
        "level": 1,
    },
    "b.md": {
        "title": "Travel",
        "tags": ("travel",),
        "date": "2024-05-01T10:00:00",
        "language": "de",
        "year": 2023.5,
        "draft": True,
        "level": True,
    },
    "c.pdf": {"title": "Old memo", "date": "2019-12-31", "year": 2019, "level": 1.0},
    "d.txt": {"language": "en", "level": "1"},
}
SCHEMA = schema_of(DOCS.items())


def outcomes(f: Filter, documents: list[tuple[str, Metadata]]) -> list[bool]:
    """Which of ``documents`` pass ``f``, evaluated as retrieval does: over a table of them all at once."""
    return DocumentTable(documents).select(f).tolist()


def matches(f: Filter, document_id: str, metadata: Metadata) -> bool:
    """Whether one document passes ``f`` (a table of that document alone)."""
    return bool(outcomes(f, [(document_id, metadata)])[0])


def selected(data: object) -> list[str]:
    """The ids of DOCS that a raw filter lets through, in order."""
    f = parse_filter(data, SCHEMA)
    return [doc_id for doc_id, metadata in DOCS.items() if matches(f, doc_id, metadata)]


def test_schema_of_collects_every_type_a_field_holds() -> None:
    """Each field maps to the set of types its values have; reserved fields keep their fixed type."""
    assert SCHEMA == {
        "title": frozenset({"string"}),
        "tags": frozenset({"tags"}),
        "date": frozenset({"date"}),
        "language": frozenset({"string"}),
        "year": frozenset({"number"}),
        "draft": frozenset({"boolean"}),
        "level": frozenset({"number", "boolean", "string"}),
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # equality, and membership on tags
        ({"language": "en"}, ["a.md", "d.txt"]),
        ({"tags": "policy"}, ["a.md"]),
        ({"tags": {"eq": "travel"}}, ["b.md"]),
        ({"document_id": "d.txt"}, ["d.txt"]),
        ({"draft": False}, ["a.md"]),
        # ne is `not eq`: a document without the field matches it
        ({"language": {"ne": "en"}}, ["b.md", "c.pdf"]),
        ({"tags": {"ne": "policy"}}, ["b.md", "c.pdf", "d.txt"]),
        ({"year": {"ne": 2024}}, ["b.md", "c.pdf", "d.txt"]),
        # in: any of the values; on tags, any tag among them
        ({"tags": {"in": ["travel", "hr"]}}, ["a.md", "b.md"]),
        ({"year": {"in": [2019, 2024.0]}}, ["a.md", "c.pdf"]),
        ({"document_id": {"in": ["a.md", "c.pdf", "z.md"]}}, ["a.md", "c.pdf"]),
        # ranges on numbers; int and float compare by value
        ({"year": {"gt": 2023.5}}, ["a.md"]),
        ({"year": {"gte": 2023.5}}, ["a.md", "b.md"]),
        ({"year": {"lt": 2024}}, ["b.md", "c.pdf"]),
        ({"year": {"lte": 2019}}, ["c.pdf"]),
        ({"year": 2024.0}, ["a.md"]),
        ({"year": {"gte": 2020, "lt": 2024}}, ["b.md"]),
        # ranges on dates, compared in canonical form
        ({"date": {"gte": "2024-01-01", "lt": "2025-01-01"}}, ["a.md", "b.md"]),
        ({"date": {"lte": "2024-05-01"}}, ["a.md", "c.pdf"]),
        ({"date": {"lt": "2024-05-02"}}, ["a.md", "b.md", "c.pdf"]),
        ({"date": {"gte": "2024-05-01T12:00:00+02:00"}}, ["b.md"]),
        ({"date": {"gt": "2024-05-01T11:00:00+01:00"}}, []),
        ({"date": "2024-05-01T10:00:00Z"}, ["b.md"]),
        # a boolean is not a number: True is not 1, and ranges skip booleans
        ({"level": 1}, ["a.md", "c.pdf"]),
        ({"level": True}, ["b.md"]),
        ({"level": "1"}, ["d.txt"]),
        ({"level": {"in": [True]}}, ["b.md"]),
        ({"level": {"in": [1, "1"]}}, ["a.md", "c.pdf", "d.txt"]),
        ({"level": {"gte": 1}}, ["a.md", "c.pdf"]),
        ({"level": {"ne": 1}}, ["b.md", "d.txt"]),
        # combinators, and field keys beside them (all ANDed)
        ({"and": [{"tags": "policy"}, {"language": "en"}]}, ["a.md"]),
        ({"or": [{"tags": "travel"}, {"year": 2019}]}, ["b.md", "c.pdf"]),
        ({"not": {"language": "en"}}, ["b.md", "c.pdf"]),
        ({"tags": "policy", "language": "de"}, []),
        ({"language": "en", "or": [{"tags": "policy"}, {"level": "1"}], "not": {"year": 2019}}, ["a.md", "d.txt"]),
    ],
)
def test_filter_selects_exactly(data: object, expected: list[str]) -> None:
    """Each operator, on each kind of field, lets through exactly these documents."""
    assert selected(data) == expected


def test_parse_gives_the_tree_with_dates_normalised_to_utc() -> None:
    """Several operators on one field are ANDed in order; a date-time with an offset becomes UTC."""
    f = parse_filter({"date": {"gte": "2024-05-01T12:00:00+02:00", "lt": "2025-01-01"}, "tags": "hr"}, {})
    assert f == AllOf(
        (
            AllOf((Condition("date", "gte", "2024-05-01T10:00:00"), Condition("date", "lt", "2025-01-01"))),
            Condition("tags", "eq", "hr"),
        )
    )


def test_parse_gives_the_tree_of_combinators() -> None:
    """and, or and not map to AllOf, AnyOf and Not; a one-key object is its condition alone."""
    f = parse_filter({"or": [{"year": {"in": [1, 2.5]}}, {"not": {"document_id": "a.md"}}]}, SCHEMA)
    assert f == AnyOf((Condition("year", "in", (1, 2.5)), Not(Condition("document_id", "eq", "a.md"))))


def test_reserved_fields_and_document_id_are_known_without_documents() -> None:
    """An empty schema still knows the reserved fields and document_id, with their fixed types."""
    assert parse_filter({"source_url": "https://example.org", "document_id": "x"}, {}) == AllOf(
        (Condition("source_url", "eq", "https://example.org"), Condition("document_id", "eq", "x"))
    )


LONG_NAME = "f" * 100
ERRORS: list[tuple[object, str]] = [
    ({"colour": "red"}, "filter: unknown field 'colour'"),
    ({LONG_NAME: 1}, f"filter: unknown field '{'f' * 64}'..."),
    ({"year": "2020"}, "filter: 'year' holds numbers; 'eq' needs a number, not a string"),
    ({"year": {"gte": True}}, "filter: 'year' holds numbers; 'gte' needs a number, not a boolean"),
    ({"year": {"gte": "2020"}}, "filter: 'year' holds numbers; 'gte' needs a number, not a string"),
    ({"title": {"gte": "a"}}, "filter: 'title' holds strings; 'gte' works on numbers and dates only"),
    ({"draft": {"lt": 1}}, "filter: 'draft' holds booleans; 'lt' works on numbers and dates only"),
    (
        {"date": {"gte": "last week"}},
        "filter: 'date' holds dates; 'gte' needs an ISO 8601 date such as '2024-05-01', not a string in another form",
    ),
    ({"date": 2024}, "filter: 'date' holds dates; 'eq' needs an ISO 8601 date such as '2024-05-01', not a number"),
    ({"tags": None}, "filter: 'tags' holds tags; 'eq' needs a string, not null"),
    ({"tags": ["policy"]}, "filter: 'tags' holds tags; 'eq' needs a string, not a list (use 'in' for any of several)"),
    (
        {"tags": {"in": ["policy", 3]}},
        "filter: 'tags' holds tags; 'in' needs a non-empty list of tags, not a list holding a number",
    ),
    (
        {"level": {"in": [[1]]}},
        "filter: 'level' holds booleans, numbers and strings; 'in' needs a non-empty list of booleans, numbers or"
        " strings, not a list holding a list",
    ),
    ({"level": {"gt": "1"}}, "filter: 'level' holds booleans, numbers and strings; 'gt' needs a number, not a string"),
    ({"year": {"in": 2020}}, "filter: 'year' holds numbers; 'in' needs a non-empty list of numbers, not a number"),
    ({"year": {"in": []}}, "filter: 'year' holds numbers; 'in' needs a non-empty list of numbers, not an empty list"),
    ({"year": {"in": list(range(1001))}}, "filter: 'year' 'in' holds 1001 values; the limit is 1000"),
    ({"year": {"between": [1, 2]}}, "filter: 'year' has unknown operator 'between'; use eq, ne, gt, gte, lt, lte, in"),
    ({"year": {}}, "filter: 'year' has no operator; use one of eq, ne, gt, gte, lt, lte, in"),
    ({"year": float("nan")}, "filter: 'year' must be a finite number"),
    # A whole number too large for a float is refused as metadata refuses it, not left to overflow a compare.
    ({"year": 10**400}, "filter: 'year' is a number beyond ±2**53"),
    ({"year": {"gt": -(2**53) - 1}}, "filter: 'year' is a number beyond ±2**53"),
    ({"year": {"in": [2020, 10**20]}}, "filter: 'year' is a number beyond ±2**53"),
    ({"title": "x" * 1001}, "filter: 'title' values are at most 1000 characters"),
    ({"and": []}, "filter: 'and' needs a non-empty list of filters"),
    ({"or": {"year": 1}}, "filter: 'or' needs a non-empty list of filters"),
    ({"not": [{"year": 1}]}, "filter: 'not' must be a JSON object"),
    ({"and": ["year"]}, "filter: each item of 'and' must be a JSON object"),
    ({"or": [{}]}, "filter: each item of 'or' is an empty object: name a field, 'and', 'or' or 'not'"),
    ({}, "filter is an empty object: name a field, 'and', 'or' or 'not'"),
    (None, "filter must be a JSON object"),
    ([{"year": 1}], "filter must be a JSON object"),
    ("year", "filter must be a JSON object"),
]


@pytest.mark.parametrize(("data", "message"), ERRORS)
def test_bad_filter_is_refused_with_the_rule_and_field_named(data: object, message: str) -> None:
    """Every rule a filter can break raises FilterError with this exact message."""
    with pytest.raises(FilterError) as caught:
        parse_filter(data, SCHEMA)
    assert str(caught.value) == message


def test_filter_error_is_a_422_query_error() -> None:
    """The API maps FilterError like any other bad query parameter."""
    assert issubclass(FilterError, QueryError)
    assert FilterError.status == 422


def test_messages_never_repeat_a_long_value() -> None:
    """A long user string appears in no message, whatever rule it breaks."""
    secret = "s" * 200
    for data in ({"year": secret}, {"date": {"gte": secret}}, {"title": {"lt": secret}}, {"year": {secret: 1}}):
        with pytest.raises(FilterError) as caught:
            parse_filter(data, SCHEMA)
        assert "s" * 65 not in str(caught.value)


def nested_nots(levels: int) -> dict[str, Any]:
    """A filter ``levels`` objects deep: ``not`` wrapped ``levels - 1`` times around one condition."""
    f: dict[str, Any] = {"year": 1}
    for _ in range(levels - 1):
        f = {"not": f}
    return f


def test_depth_limit_is_eight_objects() -> None:
    """Eight nested objects parse; nine are refused."""
    eight = parse_filter(nested_nots(8), SCHEMA)
    for _ in range(7):
        assert isinstance(eight, Not)
        eight = eight.part
    assert eight == Condition("year", "eq", 1)
    with pytest.raises(FilterError, match=r"^filter: nested deeper than 8 levels$"):
        parse_filter(nested_nots(9), SCHEMA)


@pytest.mark.parametrize(
    ("data", "allowed"),
    [
        ({"and": [{"year": i} for i in range(64)]}, True),
        ({"and": [{"year": i} for i in range(65)]}, False),
        ({"or": [{"year": {"gt": i, "lt": i + 1}} for i in range(32)]}, True),
        ({"or": [{"year": {"gt": i, "lt": i + 1}} for i in range(32)], "title": "x"}, False),
        ({"not": {"and": [{"or": [{"year": i}, {"title": str(i)}]} for i in range(33)]}}, False),
    ],
)
def test_condition_limit_is_64_in_the_whole_filter(data: object, allowed: bool) -> None:
    """Every (field, operator) pair counts once, wherever it is nested; the 65th is refused."""
    if allowed:
        parse_filter(data, SCHEMA)
    else:
        with pytest.raises(FilterError, match=r"^filter: more than 64 conditions$"):
            parse_filter(data, SCHEMA)


def test_in_list_of_exactly_1000_values_is_allowed() -> None:
    """The `in` limit is inclusive: 1,000 values parse and match by value."""
    f = parse_filter({"year": {"in": list(range(1000))}}, SCHEMA)
    assert [matches(f, i, m) for i, m in DOCS.items()] == [False, False, False, False]
    assert matches(f, "x", {"year": 999.0}) is True


def test_parsed_filter_survives_pickling() -> None:
    """A filter travels to Ray workers by pickle: equal, same hash, same matches after the round trip."""
    f = parse_filter({"tags": {"in": ["hr", "travel"]}, "or": [{"level": True}, {"not": {"year": 2019}}]}, SCHEMA)
    copy = pickle.loads(pickle.dumps(f))  # noqa: S301  # our own value, made just above
    assert copy == f
    assert hash(copy) == hash(f)
    assert [matches(copy, i, m) for i, m in DOCS.items()] == [True, True, False, False]


def test_condition_equality_tells_true_from_one() -> None:
    """Regression: Python's True == 1 would make {"level": true} and {"level": 1} equal, with one hash."""
    assert Condition("level", "eq", True) != Condition("level", "eq", 1)
    assert Condition("level", "in", (True,)) != Condition("level", "in", (1,))
    assert Condition("level", "eq", 1) == Condition("level", "eq", 1.0)
    assert hash(Condition("level", "eq", 1)) == hash(Condition("level", "eq", 1.0))
    one, true = parse_filter({"level": 1}, SCHEMA), parse_filter({"level": True}, SCHEMA)
    assert (matches(one, "b.md", DOCS["b.md"]), matches(true, "b.md", DOCS["b.md"])) == (False, True)


def test_a_filter_over_a_table_of_all_documents_agrees_with_one_at_a_time() -> None:
    """The table of many documents gives each the verdict a table of that document alone gives."""
    f = parse_filter({"or": [{"tags": "hr"}, {"year": {"lt": 2020}}]}, SCHEMA)
    assert (
        outcomes(f, list(DOCS.items()))
        == [matches(f, i, m) for i, m in DOCS.items()]
        == [
            True,
            False,
            True,
            False,
        ]
    )


# --- Hypothesis: a reference evaluator over the raw JSON, and the laws ---------------------------------

RANGE_OPS = ["gt", "gte", "lt", "lte"]
# Values a filter may compare each field with, and (for ranges) the values a range may take.
FILTER_VALUES: dict[str, list[Any]] = {
    "tags": ["a", "b", "c"],
    "year": [2019, 2020, 2020.0, 2021.5],
    "date": ["2024-01-01", "2024-05-01", "2024-05-01T10:00:00", "2024-05-01T12:00:00+02:00", "2025-01-01"],
    "kind": ["x", "y"],
    "mixed": [0, 1, 1.0, True, False, "1"],
    "document_id": ["a", "b", "c"],
}
RANGE_VALUES: dict[str, list[Any]] = {
    "year": FILTER_VALUES["year"],
    "date": FILTER_VALUES["date"],
    "mixed": [0, 1, 1.0],
}
GEN_SCHEMA: dict[str, frozenset[Any]] = {
    "year": frozenset({"number"}),
    "kind": frozenset({"string"}),
    "mixed": frozenset({"number", "boolean", "string"}),
}
MISSING = object()

# Values documents hold: they overlap the filter values, so that equality and range bounds are met.
DOC_VALUES: dict[str, list[Any]] = {
    "tags": [(), ("a",), ("b", "c"), ("a", "b", "c")],
    "year": [2019, 2020, 2020.0, 2021.5, 2022],
    "date": ["2024-01-01", "2024-05-01", "2024-05-01T10:00:00", "2024-12-31"],
    "kind": ["x", "y", "z"],
    "mixed": [0, 1, 1.0, True, False, "1", "0"],
}
# Each value alone, and documents with no metadata under each id: every case one field can meet.
EVERY_VALUE: list[tuple[str, Metadata]] = [(doc_id, {}) for doc_id in "abcd"] + [
    ("a", {field: value}) for field, values in DOC_VALUES.items() for value in values
]
metadata_st = st.fixed_dictionaries(
    {}, optional={field: st.sampled_from(values) for field, values in DOC_VALUES.items()}
)
documents_st = st.lists(st.tuples(st.sampled_from("abcd"), metadata_st), min_size=1, max_size=6)


@st.composite
def leaf_st(draw: st.DrawFn) -> dict[str, Any]:
    """One field with one or two operators, or a plain value (eq)."""
    field = draw(st.sampled_from(sorted(FILTER_VALUES)))
    ops = ["eq", "ne", "in"] + (RANGE_OPS if field in RANGE_VALUES else [])
    spec: dict[str, Any] = {}
    for op in draw(st.lists(st.sampled_from(ops), min_size=1, max_size=2, unique=True)):
        if op == "in":
            spec[op] = draw(st.lists(st.sampled_from(FILTER_VALUES[field]), min_size=1, max_size=3))
        else:
            spec[op] = draw(st.sampled_from(RANGE_VALUES[field] if op in RANGE_OPS else FILTER_VALUES[field]))
    if list(spec) == ["eq"] and draw(st.booleans()):
        return {field: spec["eq"]}
    return {field: spec}


def filter_st(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Raw filters at most ``depth`` combinators deep; at most 2 * 3**depth conditions (54 at depth 3)."""
    if depth == 0:
        return leaf_st()
    sub = filter_st(depth - 1)
    return st.one_of(
        leaf_st(),
        st.lists(sub, min_size=1, max_size=3).map(lambda parts: {"and": parts}),
        st.lists(sub, min_size=1, max_size=3).map(lambda parts: {"or": parts}),
        sub.map(lambda part: {"not": part}),
        st.tuples(leaf_st(), sub).map(lambda pair: {**pair[0], "and": [pair[1]]}),  # field keys beside a combinator
    )


def kind_of(value: object) -> str:
    return "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "string"


def reference_op(field: str, op: str, want: Any, have: Any) -> bool:
    """One operator, evaluated plainly: same kind and equal, tags by membership, ne as not eq."""
    if field == "date":
        want = [clean_date(w) for w in want] if op == "in" else clean_date(want)
    if op == "ne":
        return not reference_op(field, "eq", want, have)
    if have is MISSING:
        return False
    if op == "in":
        return any(reference_op("", "eq", w, have) for w in want)
    if op == "eq":
        if isinstance(have, tuple):
            return any(kind_of(t) == kind_of(want) and t == want for t in have)
        return kind_of(have) == kind_of(want) and have == want
    if kind_of(have) != kind_of(want) or kind_of(have) == "boolean":
        return False
    return bool({"gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}[op])


def reference(data: dict[str, Any], doc_id: str, metadata: Metadata) -> bool:
    """A raw filter evaluated recursively, key by key, with no parsing."""
    results = []
    for key, spec in data.items():
        if key == "and":
            results.append(all(reference(part, doc_id, metadata) for part in spec))
        elif key == "or":
            results.append(any(reference(part, doc_id, metadata) for part in spec))
        elif key == "not":
            results.append(not reference(spec, doc_id, metadata))
        else:
            have = doc_id if key == "document_id" else metadata.get(key, MISSING)
            ops = spec if isinstance(spec, dict) else {"eq": spec}
            results.append(all(reference_op(key, op, want, have) for op, want in ops.items()))
    return all(results)


LAWS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@LAWS
@given(data=leaf_st())
def test_one_field_agrees_with_the_reference_evaluator(data: dict[str, Any]) -> None:
    """Where the type rules live (bool vs number, tags, dates, ne on a missing field): one field, every value."""
    f = parse_filter(data, GEN_SCHEMA)
    assert [matches(f, i, m) for i, m in EVERY_VALUE] == [reference(data, i, m) for i, m in EVERY_VALUE]


@LAWS
@given(data=filter_st(3), documents=documents_st)
def test_matches_agrees_with_the_reference_evaluator(data: dict[str, Any], documents: list[Any]) -> None:
    """On random filters and documents, matches gives what the plain evaluator of the raw JSON gives."""
    f = parse_filter(data, GEN_SCHEMA)
    assert [matches(f, i, m) for i, m in documents] == [reference(data, i, m) for i, m in documents]


@LAWS
@given(data=filter_st(3), documents=documents_st)
def test_not_not_is_the_filter_itself(data: dict[str, Any], documents: list[Any]) -> None:
    """not(not f) == f, whether built as a tree or parsed from JSON."""
    f = parse_filter(data, GEN_SCHEMA)
    expected = outcomes(f, documents)
    assert outcomes(Not(Not(f)), documents) == expected
    assert outcomes(parse_filter({"not": {"not": data}}, GEN_SCHEMA), documents) == expected


@LAWS
@given(a=filter_st(2), b=filter_st(2), documents=documents_st)
def test_de_morgan(a: dict[str, Any], b: dict[str, Any], documents: list[Any]) -> None:
    """not(a and b) == (not a) or (not b); not(a or b) == (not a) and (not b)."""

    def run(data: dict[str, Any]) -> list[bool]:
        return outcomes(parse_filter(data, GEN_SCHEMA), documents)

    assert run({"not": {"and": [a, b]}}) == run({"or": [{"not": a}, {"not": b}]})
    assert run({"not": {"or": [a, b]}}) == run({"and": [{"not": a}, {"not": b}]})
    assert run({"and": [a, b]}) == [x and y for x, y in zip(run(a), run(b), strict=True)]
    assert run({"or": [a, b]}) == [x or y for x, y in zip(run(a), run(b), strict=True)]


@LAWS
@given(data=leaf_st())
def test_the_document_table_agrees_on_every_value_of_one_field(data: dict[str, Any]) -> None:
    """DocumentTable.select over all values at once (lookups and sorted ranges) equals the reference."""
    f = parse_filter(data, GEN_SCHEMA)
    assert DocumentTable(EVERY_VALUE).select(f).tolist() == [reference(data, i, m) for i, m in EVERY_VALUE]


@LAWS
@given(data=filter_st(3), documents=documents_st)
def test_the_document_table_agrees_on_random_filters(data: dict[str, Any], documents: list[Any]) -> None:
    f = parse_filter(data, GEN_SCHEMA)
    assert DocumentTable(documents).select(f).tolist() == [reference(data, i, m) for i, m in documents]
