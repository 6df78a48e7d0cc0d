"""Search index backends behind one interface (``index.base.IndexBackend``)."""

from __future__ import annotations

import functools

from index.base import Document, Hit, IndexBackend, SearchQuery, SearchResult, WriteOutcome
from pipeline.settings import Settings, get_settings

__all__ = ["Document", "Hit", "IndexBackend", "SearchQuery", "SearchResult", "WriteOutcome",
           "get_backend", "open_backend"]


def open_backend(settings: Settings) -> IndexBackend:
    """A new backend for ``INDEX_BACKEND`` (heavy clients are imported only when selected)."""
    if settings.index_backend == "opensearch":
        from index.opensearch import OpenSearchIndex

        return OpenSearchIndex.from_settings(settings)
    from index.sqlite import SqliteIndex

    return SqliteIndex(settings.sqlite_path)


@functools.cache
def get_backend() -> IndexBackend:
    """The process-wide backend for the configured settings."""
    return open_backend(get_settings())
