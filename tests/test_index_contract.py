"""One contract, two backends: every case runs on SQLite and on a real OpenSearch node.

The ``opensearch`` parameter asks for the ``opensearch_url`` fixture only when it runs, so the
SQLite cases run where OpenSearch is missing (those skip locally and fail with ``CI=true``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.base import Document, IndexBackend, SearchQuery, WriteOutcome
from index.sqlite import SqliteIndex
from tests.opensearch_fixture import opensearch_url  # noqa: F401  (fixture)

SENTENCE = "東京都の定例会議の議事録です。来年度の予算について quarterly budget review を行った。"


@pytest.fixture(params=["sqlite", "opensearch"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexBackend]:
    if request.param == "sqlite":
        embedded = SqliteIndex(tmp_path / "index.sqlite3")
        yield embedded
        embedded.close()
        return
    from index.opensearch import OpenSearchIndex

    url = request.getfixturevalue("opensearch_url")
    remote = OpenSearchIndex(url, f"contract-{uuid.uuid4().hex[:10]}", refresh=True)
    try:
        yield remote
    finally:
        remote.client.indices.delete(index=f"{remote.alias}-*", ignore_unavailable=True)
        remote.close()


def doc(key: str, order: str = "s01", bucket: str = "uploads", **fields: Any) -> Document:
    """A document for ``key`` as ``tasks.index.build_document`` would make it."""
    folder, _, name = key.rpartition("/")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    base: dict[str, Any] = {
        "id": f"{bucket}/{key}", "bucket": bucket, "key": key,
        "folder": folder + "/" if folder else "", "name": name, "extension": ext,
        "content_type": "text/plain", "size": 10, "etag": "e1", "version_id": None,
        "last_modified": "2024-05-01T10:00:00+00:00", "order": order, "title": None,
        "author": None, "pages": None, "text": "", "outcome": "indexed", "reason": None,
        "truncated": False, "indexed_at": "2024-05-01T10:00:01.000+00:00", "metadata": {},
    }
    base.update(fields)
    return base  # type: ignore[return-value]


def keys(backend: IndexBackend, **query: Any) -> list[str]:
    return sorted(h.key for h in backend.search(SearchQuery(limit=50, **query)).hits)


# ---- ordering ---------------------------------------------------------------------------------


def test_upsert_then_get(backend: IndexBackend) -> None:
    d = doc("a/report.txt", text="hello world", title="Report", metadata={"odd key.$": [1]})
    assert backend.upsert(d) is WriteOutcome.WRITTEN
    got = backend.get(d["id"])
    assert got is not None
    for field in ("id", "bucket", "key", "folder", "name", "extension", "content_type", "size",
                  "etag", "order", "title", "text", "outcome", "truncated", "metadata",
                  "last_modified", "version_id", "pages"):
        assert got[field] == d[field], field
    assert backend.count() == 1
    assert backend.get("uploads/missing") is None


def test_repeat_upsert_is_stale_and_changes_nothing(backend: IndexBackend) -> None:
    backend.upsert(doc("a.txt", order="s05", text="first"))
    assert backend.upsert(doc("a.txt", order="s05", text="second")) is WriteOutcome.STALE
    got = backend.get("uploads/a.txt")
    assert got is not None and got["text"] == "first"
    assert backend.is_stale("uploads/a.txt", "s05")


def test_newer_order_replaces(backend: IndexBackend) -> None:
    backend.upsert(doc("a.txt", order="s05", text="first", title="Old"))
    assert backend.upsert(doc("a.txt", order="s06", text="second")) is WriteOutcome.WRITTEN
    got = backend.get("uploads/a.txt")
    assert got is not None and (got["text"], got["title"], got["order"]) == ("second", None, "s06")
    assert keys(backend, text="first") == []
    assert keys(backend, text="second") == ["a.txt"]


def test_older_order_after_newer_is_stale(backend: IndexBackend) -> None:
    backend.upsert(doc("a.txt", order="s0A", text="newer"))
    assert backend.upsert(doc("a.txt", order="s09", text="older")) is WriteOutcome.STALE
    got = backend.get("uploads/a.txt")
    assert got is not None and got["text"] == "newer"


def test_delete_then_late_older_create_leaves_nothing(backend: IndexBackend) -> None:
    # Given a document, deleted by a newer event
    backend.upsert(doc("gone.txt", order="s01", text="zombie text"))
    assert backend.delete("uploads/gone.txt", "s03") is WriteOutcome.WRITTEN
    # When an older create arrives late
    assert backend.upsert(doc("gone.txt", order="s02", text="zombie text")) is WriteOutcome.STALE
    # Then nothing comes back
    assert backend.get("uploads/gone.txt") is None
    assert backend.count() == 0
    assert backend.search(SearchQuery(text="zombie")).total == 0
    assert backend.search(SearchQuery()).total == 0
    assert backend.is_stale("uploads/gone.txt", "s02")


def test_delete_of_unknown_key_blocks_older_create(backend: IndexBackend) -> None:
    assert backend.delete("uploads/never.txt", "s05") is WriteOutcome.WRITTEN
    assert backend.upsert(doc("never.txt", order="s04")) is WriteOutcome.STALE
    assert backend.get("uploads/never.txt") is None and backend.count() == 0


def test_stale_delete_is_a_noop(backend: IndexBackend) -> None:
    backend.upsert(doc("a.txt", order="s05", text="kept"))
    assert backend.delete("uploads/a.txt", "s04") is WriteOutcome.STALE
    assert backend.get("uploads/a.txt") is not None


def test_delete_then_newer_create_resurrects(backend: IndexBackend) -> None:
    backend.upsert(doc("a.txt", order="s01", text="v1"))
    backend.delete("uploads/a.txt", "s02")
    assert backend.upsert(doc("a.txt", order="s03", text="v3")) is WriteOutcome.WRITTEN
    got = backend.get("uploads/a.txt")
    assert got is not None and got["text"] == "v3"
    assert backend.count() == 1
    assert keys(backend, text="v3") == ["a.txt"]


def test_unknown_order_always_writes(backend: IndexBackend) -> None:
    backend.upsert(doc("a.txt", order="s09", text="known"))
    assert backend.upsert(doc("a.txt", order="", text="unknown1")) is WriteOutcome.WRITTEN
    assert backend.upsert(doc("a.txt", order="", text="unknown2")) is WriteOutcome.WRITTEN
    got = backend.get("uploads/a.txt")
    assert got is not None and got["text"] == "unknown2"


# ---- search -----------------------------------------------------------------------------------


@pytest.fixture
def corpus(backend: IndexBackend) -> IndexBackend:
    docs = [
        doc("報告書 2024/会議.txt", text=SENTENCE, title="議事録"),
        doc("報告書 2024/sub/予算.pdf", content_type="application/pdf",
            text="予算案の説明資料。budget proposal"),
        doc("報告書 2024 old/古い.docx", text="古い会議の議事録",
            content_type="application/vnd.openxmlformats-officedocument."
                         "wordprocessingml.document"),
        doc("報告/メモ.txt", text="単なる覚え書き"),
        doc("README", text="An unrelated English note about cats."),
    ]
    for d in docs:
        assert backend.upsert(d) is WriteOutcome.WRITTEN
    return backend


def test_japanese_words_inside_a_sentence(corpus: IndexBackend) -> None:
    assert keys(corpus, text="会議") == ["報告書 2024 old/古い.docx", "報告書 2024/会議.txt"]
    assert keys(corpus, text="議事録") == ["報告書 2024 old/古い.docx", "報告書 2024/会議.txt"]
    assert keys(corpus, text="定例会議") == ["報告書 2024/会議.txt"]
    assert keys(corpus, text="quarterly") == ["報告書 2024/会議.txt"]
    assert keys(corpus, text="存在しない") == []


def test_all_terms_must_match(corpus: IndexBackend) -> None:
    assert keys(corpus, text="会議 予算") == ["報告書 2024/会議.txt"]
    assert keys(corpus, text="budget 説明資料") == ["報告書 2024/sub/予算.pdf"]


def test_phrase_query(corpus: IndexBackend) -> None:
    assert keys(corpus, text='"quarterly budget"') == ["報告書 2024/会議.txt"]
    assert keys(corpus, text='"budget quarterly"') == []


def test_name_and_folder_are_searched(corpus: IndexBackend) -> None:
    assert keys(corpus, text="メモ") == ["報告/メモ.txt"]
    assert "報告書 2024/sub/予算.pdf" in keys(corpus, text="報告書")


@pytest.mark.parametrize("folder", ["報告書 2024", "報告書 2024/"])
def test_folder_filter_is_a_segment_prefix(corpus: IndexBackend, folder: str) -> None:
    assert keys(corpus, folder=folder) == ["報告書 2024/sub/予算.pdf", "報告書 2024/会議.txt"]
    assert keys(corpus, folder=folder, text="会議") == ["報告書 2024/会議.txt"]


def test_folder_filter_never_matches_part_of_a_segment(corpus: IndexBackend) -> None:
    assert keys(corpus, folder="報告") == ["報告/メモ.txt"]
    assert keys(corpus, folder="報告書") == []
    assert keys(corpus, folder="報告書 2024/sub") == ["報告書 2024/sub/予算.pdf"]
    assert keys(corpus, folder="2024") == []


def test_file_type_by_extension_and_media_type(corpus: IndexBackend) -> None:
    assert keys(corpus, file_type="pdf") == ["報告書 2024/sub/予算.pdf"]
    assert keys(corpus, file_type=".PDF") == ["報告書 2024/sub/予算.pdf"]
    assert keys(corpus, file_type="application/pdf") == ["報告書 2024/sub/予算.pdf"]
    assert keys(corpus, file_type="docx") == ["報告書 2024 old/古い.docx"]
    assert keys(corpus, file_type="text/plain", text="会議") == ["報告書 2024/会議.txt"]


def test_bucket_filter(corpus: IndexBackend) -> None:
    corpus.upsert(doc("other.txt", bucket="archive", text="会議"))
    assert keys(corpus, bucket="archive") == ["other.txt"]
    assert len(keys(corpus, bucket="uploads")) == 5


def test_snippet_contains_the_matched_word(corpus: IndexBackend) -> None:
    (hit,) = corpus.search(SearchQuery(text="定例")).hits
    assert "定例" in hit.snippet
    assert hit.title == "議事録" and hit.content_type == "text/plain"
    assert hit.outcome == "indexed" and hit.bucket == "uploads"
    (hit,) = corpus.search(SearchQuery(text="cats")).hits
    assert "cats" in hit.snippet


def test_snippet_without_a_text_match_is_the_start_of_the_text(corpus: IndexBackend) -> None:
    (hit,) = corpus.search(SearchQuery(text="メモ")).hits  # matches the name only
    assert hit.snippet.startswith("単なる覚え書き")


def test_totals_limit_and_folder_facets(corpus: IndexBackend) -> None:
    result = corpus.search(SearchQuery(limit=2))
    assert result.total == 5 and len(result.hits) == 2
    assert result.folders == {"報告書 2024/": 1, "報告書 2024/sub/": 1, "報告書 2024 old/": 1,
                              "報告/": 1, "": 1}
    result = corpus.search(SearchQuery(text="会議"))
    assert result.total == 2
    assert result.folders == {"報告書 2024/": 1, "報告書 2024 old/": 1}


def test_folder_filter_is_case_sensitive(backend: IndexBackend) -> None:
    """S3 keys are case-sensitive, so folder prefixes are too."""
    backend.upsert(doc("Reports/a.txt"))
    backend.upsert(doc("reports/b.txt"))
    assert keys(backend, folder="reports") == ["reports/b.txt"]
