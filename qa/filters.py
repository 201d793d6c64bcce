"""Metadata filters: which documents a question or a search may draw on.

A filter is a JSON object sent with ``ask`` or ``search`` (``{"filter": {...}}``)::

    {"tags": "policy"}                                     "policy" is one of the tags
    {"tags": "policy", "language": "en"}                   several keys: all must hold (AND)
    {"date": {"gte": "2024-01-01", "lt": "2025-01-01"}}    operators: eq ne gt gte lt lte in
    {"document_id": {"in": ["a.pdf", "b.md"]}}             the document's id is always a field
    {"or": [{"tags": "hr"}, {"not": {"year": {"lt": 2020}}}], "language": "en"}

Rules:

* A plain value means ``eq``. On ``tags`` ``eq`` means "is one of the tags" and ``in`` "any of them is".
* A document without the field matches no ``eq``, ``in`` or range on it; ``ne`` is ``not eq``, so it
  matches documents without the field.
* Ranges (``gt gte lt lte``) work on numbers and dates only. Dates are normalised by ``clean_date`` and
  compare as strings: ``{"lte": "2024-05-01"}`` takes ``2024-05-01`` but not ``2024-05-01T10:00:00``, so
  "up to the end of a day" is ``{"lt": "2024-05-02"}``.
* ``true`` is not ``1``: booleans equal booleans only, while ``1`` equals ``1.0``. Strings compare exactly.
* ``and`` and ``or`` take a non-empty list of filters, ``not`` one filter; they may sit beside field keys.
* A filter is checked against the fields the index holds and the types their values have: an unknown
  field, or a value of a type the field never holds, is a ``FilterError`` naming the field.

``parse_filter`` turns the JSON into a tree of frozen values (``Condition``, ``AllOf``, ``AnyOf``,
``Not``), which pickles (for Ray workers) and hashes; ``DocumentTable`` evaluates a tree over many
documents at once (retrieval keeps one per segment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from qa.errors import QueryError
from qa.jsontext import decode
from qa.metadata import (
    DOCUMENT_ID,
    MAX_STRING_CHARS,
    RESERVED,
    FieldType,
    Metadata,
    MetadataError,
    clean_date,
    field_type,
    number_problem,
)

Scalar = str | int | float | bool
Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]

OPERATORS: dict[str, Operator] = {op: op for op in get_args(Operator)}
RANGES = frozenset({"gt", "gte", "lt", "lte"})
# Limits that keep a hostile filter cheap to parse and to run over every document.
MAX_DEPTH = 8  # objects nested through and/or/not; the outermost object is level 1
MAX_CONDITIONS = 64  # (field, operator) pairs in one filter; an `in` list counts once
MAX_VALUES = 1000  # values in one `in` list
# Fields every index has, whether or not a document sets them.
ALWAYS: dict[str, FieldType] = {**RESERVED, DOCUMENT_ID: "string"}
# How a message names a type the field holds, and the value an operator needs for it.
_KINDS: dict[FieldType, tuple[str, str]] = {
    "boolean": ("booleans", "a boolean"),
    "date": ("dates", "an ISO 8601 date such as '2024-05-01'"),
    "number": ("numbers", "a number"),
    "string": ("strings", "a string"),
    "tags": ("tags", "a string"),
}


class FilterError(QueryError):
    """A filter breaks a rule, or names a field or a type the index does not hold (422)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One field compared by one operator: ``Condition("year", "gte", 2020)``.

    ``value`` is a scalar, or a tuple for ``in``; dates are in ``clean_date``'s canonical form. Equality
    and hash tell ``True`` from ``1`` (Python's ``==`` does not), so conditions that match different
    documents are never equal.
    """

    field: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]

    def _key(self) -> tuple[object, ...]:
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        typed = tuple((isinstance(v, bool), v) for v in values)
        return (self.field, self.op, isinstance(self.value, tuple), typed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part holds (``and``, or several keys in one object)."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part holds (``or``)."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The part does not hold (``not``)."""

    part: Filter


Filter = Condition | AllOf | AnyOf | Not


def _name(text: object) -> str:
    """A user-given name for a message: quoted, cut to 64 characters."""
    text = str(text)
    return repr(text[:64]) + ("..." if len(text) > 64 else "")


def _what(value: object, types: frozenset[FieldType]) -> str:
    """What a value is, in words, for a message that must not repeat it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string in another form" if "date" in types else "a string"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    return "an object" if isinstance(value, Mapping) else "a value"


def _words(items: Iterable[str], last: str) -> str:
    """``a, b and c``: a list in words."""
    *rest, end = items
    return f"{', '.join(rest)} {last} {end}" if rest else end


def _held(types: frozenset[FieldType]) -> str:
    return _words((_KINDS[t][0] for t in sorted(types)), "and")


def _expected(field: str, types: frozenset[FieldType], op: str, got: str) -> FilterError:
    held = _held(types)
    usable = sorted(t for t in types if op not in RANGES or t in ("number", "date"))
    if op == "in":
        wanted = "a non-empty list of " + _words((_KINDS[t][0] for t in usable), "or")
    else:
        wanted = _words((_KINDS[t][1] for t in usable), "or")
    hint = " (use 'in' for any of several)" if got == "a list" and op != "in" else ""
    return FilterError(f"filter: {_name(field)} holds {held}; {op!r} needs {wanted}, not {got}{hint}")


class _Parser:
    """One parse: the known fields and the count of conditions so far."""

    def __init__(self, known: Mapping[str, frozenset[FieldType]]) -> None:
        self.known = known
        self.conditions = 0

    def node(self, data: object, depth: int, where: str = "filter") -> Filter:
        if not isinstance(data, Mapping):
            raise FilterError(f"{where} must be a JSON object")
        if depth > MAX_DEPTH:
            raise FilterError(f"filter: nested deeper than {MAX_DEPTH} levels")
        if not data:
            raise FilterError(f"{where} is an empty object: name a field, 'and', 'or' or 'not'")
        parts = [self.entry(key, value, depth) for key, value in data.items()]
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def entry(self, key: object, value: object, depth: int) -> Filter:
        if key in ("and", "or"):
            if not isinstance(value, list | tuple) or not value:
                raise FilterError(f"filter: {key!r} needs a non-empty list of filters")
            if len(value) > MAX_CONDITIONS:  # each item holds at least one condition
                raise FilterError(f"filter: more than {MAX_CONDITIONS} conditions")
            parts = tuple(self.node(item, depth + 1, f"filter: each item of {key!r}") for item in value)
            return AllOf(parts) if key == "and" else AnyOf(parts)
        if key == "not":
            return Not(self.node(value, depth + 1, "filter: 'not'"))
        if not isinstance(key, str) or key not in self.known:
            raise FilterError(f"filter: unknown field {_name(key)}")
        if not isinstance(value, Mapping):
            return self.condition(key, "eq", value)
        if not value:
            raise FilterError(f"filter: {_name(key)} has no operator; use one of {', '.join(OPERATORS)}")
        conditions = [self.condition(key, op, operand) for op, operand in value.items()]
        return conditions[0] if len(conditions) == 1 else AllOf(tuple(conditions))

    def condition(self, field: str, op: object, value: object) -> Condition:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"filter: more than {MAX_CONDITIONS} conditions")
        kind = OPERATORS.get(op) if isinstance(op, str) else None
        if kind is None:
            raise FilterError(f"filter: {_name(field)} has unknown operator {_name(op)}; use {', '.join(OPERATORS)}")
        types = self.known[field]
        if kind == "in":
            if not isinstance(value, list | tuple) or not value:
                raise _expected(field, types, kind, _what(value, types))
            if len(value) > MAX_VALUES:
                raise FilterError(f"filter: {_name(field)} 'in' holds {len(value)} values; the limit is {MAX_VALUES}")
            return Condition(field, "in", tuple(self.scalar(field, types, "in", v) for v in value))
        if kind in RANGES and not types & {"number", "date"}:
            raise FilterError(f"filter: {_name(field)} holds {_held(types)}; {kind!r} works on numbers and dates only")
        return Condition(field, kind, self.scalar(field, types, kind, value))

    def scalar(self, field: str, types: frozenset[FieldType], op: str, value: object) -> Scalar:
        ranged = op in RANGES
        if isinstance(value, bool):
            if not ranged and "boolean" in types:
                return value
        elif isinstance(value, int | float):
            if "number" in types:
                if (problem := number_problem(value)) is not None:
                    raise FilterError(f"filter: {_name(field)} {problem}")
                return value
        elif isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise FilterError(f"filter: {_name(field)} values are at most {MAX_STRING_CHARS} characters")
            if "date" in types:
                with suppress(MetadataError):
                    return clean_date(value)
            if not ranged and types & {"string", "tags"}:
                return value
        got = _what(value, types)
        raise _expected(field, types, op, f"a list holding {got}" if op == "in" else got)


def filter_json(text: str) -> dict[str, Any]:
    """A filter given as JSON text (a URL parameter, ``--filter``), decoded; checked by ``parse_filter`` next.

    Raises:
        FilterError: Saying why the text is no filter: not valid JSON (where), nested too deeply to parse, a
            number too long to read, or JSON that is not an object.
    """
    try:
        data = decode(text, "filter")
    except ValueError as exc:
        raise FilterError(str(exc)) from None
    if not isinstance(data, dict):
        raise FilterError("filter must be a JSON object")
    return data


def parse_filter(data: object, schema: Mapping[str, frozenset[FieldType]]) -> Filter:
    """Check a filter against the fields an index holds, and parse it.

    Args:
        data: The filter as decoded JSON.
        schema: Each field some document has, with the types its values have (``schema_of``). The
            reserved fields and ``document_id`` are added: they are always known.

    Returns:
        The filter as a tree of ``Condition``, ``AllOf``, ``AnyOf`` and ``Not``.

    Raises:
        FilterError: Naming the field or rule broken: an unknown field, a value of a type the field
            never holds, a malformed object, or a limit (depth, conditions, values, characters) passed.
    """
    known = {name: frozenset(types) for name, types in schema.items() if types}
    for name, kind in ALWAYS.items():
        known[name] = known.get(name, frozenset()) | {kind}
    return _Parser(known).node(data, 1)


_Key = tuple[str, object]


def _key(value: object) -> _Key | None:
    """How a value is looked up for equality: booleans, numbers (1 == 1.0) and strings apart."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return None


class DocumentTable:
    """Many documents' metadata as lookup tables, so that a filter is evaluated over all of them at once.

    For each field: the documents holding each value (a tag counts for its list), and the documents'
    numbers and strings in sorted order for ranges. ``select`` gives what ``compile_filter`` would
    give document by document (a test holds the two equal), at the cost of the matching documents
    rather than of all of them.
    """

    def __init__(self, documents: Iterable[tuple[str, Metadata]]) -> None:
        postings: dict[str, dict[_Key, list[int]]] = {}
        numbers: dict[str, list[tuple[float, int]]] = {}
        strings: dict[str, list[tuple[str, int]]] = {}
        count = 0
        for ordinal, (document_id, metadata) in enumerate(documents):
            count += 1
            for field, value in ((DOCUMENT_ID, document_id), *metadata.items()):
                at = postings.setdefault(field, {})
                for item in value if isinstance(value, tuple) else (value,):
                    key = _key(item)
                    if key is not None:
                        at.setdefault(key, []).append(ordinal)
                if isinstance(value, str):
                    strings.setdefault(field, []).append((value, ordinal))
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    numbers.setdefault(field, []).append((float(value), ordinal))
        self.count = count
        self.postings = {f: {k: np.asarray(v, dtype=np.int64) for k, v in at.items()} for f, at in postings.items()}
        self.numbers = {f: _sorted(pairs, np.float64) for f, pairs in numbers.items()}
        self.strings = {f: _sorted(pairs, object) for f, pairs in strings.items()}

    def select(self, f: Filter) -> npt.NDArray[np.bool_]:
        """Which documents (by their order in the table) ``f`` matches."""
        if isinstance(f, Not):
            return ~self.select(f.part)
        if isinstance(f, AllOf | AnyOf):
            combined = self.select(f.parts[0]).copy()
            for part in f.parts[1:]:
                if isinstance(f, AllOf):
                    combined &= self.select(part)
                else:
                    combined |= self.select(part)
            return combined
        mask = np.zeros(self.count, dtype=np.bool_)
        if f.op in RANGES:
            assert not isinstance(f.value, tuple)
            by_value = self.strings if isinstance(f.value, str) else self.numbers
            values, ordinals = by_value.get(f.field, (np.zeros(0), np.zeros(0, dtype=np.int64)))
            bound = f.value if isinstance(f.value, str) else float(f.value)
            if f.op in ("gt", "gte"):
                start = np.searchsorted(values, bound, side="right" if f.op == "gt" else "left")
                mask[ordinals[start:]] = True
            else:
                stop = np.searchsorted(values, bound, side="left" if f.op == "lt" else "right")
                mask[ordinals[:stop]] = True
            return mask
        at = self.postings.get(f.field, {})
        for value in f.value if isinstance(f.value, tuple) else (f.value,):
            key = _key(value)
            if key is not None and key in at:
                mask[at[key]] = True
        return ~mask if f.op == "ne" else mask


def _sorted(pairs: list[tuple[Any, int]], dtype: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    pairs.sort(key=lambda pair: pair[0])
    return np.asarray([v for v, _ in pairs], dtype=dtype), np.asarray([o for _, o in pairs], dtype=np.int64)


def schema_of(documents: Iterable[tuple[str, Metadata]]) -> dict[str, frozenset[FieldType]]:
    """Each metadata field the documents have, with the types its values have (``field_type``)."""
    found: dict[str, set[FieldType]] = {}
    for _document_id, metadata in documents:
        for name, value in metadata.items():
            found.setdefault(name, set()).add(field_type(name, value))
    return {name: frozenset(types) for name, types in found.items()}
