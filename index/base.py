"""The index contract shared by the embedded (SQLite FTS5) and OpenSearch backends.

Public methods live here once; a backend fills in the ``_``-prefixed hooks.  Every write is safe
to repeat and ordered by ``order`` (see ``pipeline.objects.ObjectRef.order``): a write whose
order is older than what the index holds for that key -- a live document *or* the tombstone a
delete left -- is a no-op reported as ``stale``.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any, TypedDict


class Document(TypedDict, total=False):
    """One indexed file; ``id`` is ``pipeline.objects.document_id(bucket, key)``."""

    id: str
    bucket: str
    key: str
    #: key's folder with trailing slash ("" at the root)
    folder: str
    name: str
    #: lower-case extension without the dot ("" if none)
    extension: str
    content_type: str
    size: int
    etag: str | None
    version_id: str | None
    last_modified: str | None
    #: order of the S3 event that produced this document (see ``ObjectRef.order``)
    order: str
    title: str | None
    author: str | None
    pages: int | None
    text: str
    #: ``indexed`` or ``metadata_only``
    outcome: str
    reason: str | None
    truncated: bool
    indexed_at: str
    #: further JSON-safe metadata from the extractor
    metadata: dict[str, Any]


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    #: an equal or newer version is already indexed (or deleted); nothing changed
    STALE = "stale"


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    #: media type (``application/pdf``) or extension (``pdf``)
    file_type: str | None = None
    #: folder prefix, e.g. ``reports/2024/``
    folder: str | None = None
    bucket: str | None = None
    limit: int = 10


@dataclass(frozen=True)
class Hit:
    id: str
    bucket: str
    key: str
    title: str | None
    content_type: str
    snippet: str
    outcome: str
    score: float = 0.0


@dataclass
class SearchResult:
    total: int
    hits: list[Hit] = field(default_factory=list)
    #: folder -> document count, where the backend can compute it
    folders: dict[str, int] = field(default_factory=dict)


def supersedes(order: str, current: str | None) -> bool:
    """Whether a write with ``order`` should replace what the index holds at ``current``.

    The rule every backend applies: nothing held, or strictly newer.  An unknown order (``""``)
    always writes (last writer wins), since nothing can be compared.
    """
    return current is None or order == "" or order > current


class IndexBackend(abc.ABC):
    """A search index.  Raises ``IndexUnavailable`` (transient) when it cannot be reached and
    ``MappingRejected`` (permanent) when it refuses a document."""

    def upsert(self, doc: Document) -> WriteOutcome:
        """Write ``doc`` unless the index holds an equal or newer ``order`` for its key."""
        for required in ("id", "bucket", "key", "order"):
            if required not in doc:
                raise ValueError(f"document lacks {required!r}")
        return self._upsert(doc)

    def delete(self, doc_id: str, order: str) -> WriteOutcome:
        """Remove the document and remember ``order`` so an older create cannot resurrect it."""
        return self._delete(doc_id, order)

    def is_stale(self, doc_id: str, order: str) -> bool:
        """True if the index already holds ``order`` or newer for this key (cheap; no write)."""
        return not supersedes(order, self._current_order(doc_id))

    def get(self, doc_id: str) -> Document | None:
        return self._get(doc_id)

    def search(self, query: SearchQuery) -> SearchResult:
        return self._search(query)

    def count(self) -> int:
        return self._count()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""

    @abc.abstractmethod
    def _upsert(self, doc: Document) -> WriteOutcome: ...

    @abc.abstractmethod
    def _delete(self, doc_id: str, order: str) -> WriteOutcome: ...

    @abc.abstractmethod
    def _current_order(self, doc_id: str) -> str | None:
        """Order of the live document or tombstone for ``doc_id``, or ``None``."""

    @abc.abstractmethod
    def _get(self, doc_id: str) -> Document | None: ...

    @abc.abstractmethod
    def _search(self, query: SearchQuery) -> SearchResult: ...

    @abc.abstractmethod
    def _count(self) -> int: ...
