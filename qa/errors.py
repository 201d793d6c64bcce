"""Errors raised by the core library.

Exception hierarchy (HTTP status in brackets, where the API maps one):

* QAError                       base; never raised directly
  x CorpusError          [400]  unreadable, empty or unsupported source document
  x QueryError           [422]  empty, over-long or malformed question; k out of range
  x DocumentNotFound     [404]  no document or passage with that id in the index
  x CollectionNotFound   [404]  no collection of that name
  x CollectionExists     [409]  a collection of that name exists already (or is ``default``)
  x WorkLimitError       [413]  a document would cost more indexing work than a write may cause
  x IndexMissingError    [503]  no built index in the index directory: run `qa index`
  x IndexFormatError     [503]  damaged index, or built with another format or model: rebuild it
  x ModelError           [503]  the embedding model cannot be loaded
"""

from __future__ import annotations

# The message of DocumentNotFound for a document: it never repeats the id, which came from the caller.
NO_DOCUMENT = "no document with this id in the index"


class QAError(Exception):
    """Base class of every error this library raises."""

    status: int = 500


class CorpusError(QAError):
    """A source document cannot be read, decoded or parsed."""

    status = 400


class QueryError(QAError):
    """A question or search parameter breaks an input rule."""

    status = 422


class DocumentNotFound(QAError):
    """No document or passage with the given id is in the index."""

    status = 404


class CollectionNotFound(QAError):
    """No collection of the given name."""

    status = 404


class CollectionExists(QAError):
    """A collection of the given name exists already, or the change would remove ``default``."""

    status = 409


class WorkLimitError(QAError):
    """A document would make more passages, or more texts to embed, than one write may."""

    status = 413


class IndexMissingError(QAError):
    """The index directory holds no built index."""

    status = 503


class IndexFormatError(QAError):
    """The index is damaged, or does not match this version or model."""

    status = 503


class ModelError(QAError):
    """The embedding model cannot be loaded."""

    status = 503
