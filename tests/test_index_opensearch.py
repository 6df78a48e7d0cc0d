"""OpenSearch-only behaviour against a real node: engine errors, per-item bulk outcomes, rebuild.

The shared contract (ordering, search, filters) is in ``test_index_contract.py``.
"""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from index.base import SearchQuery, WriteOutcome
from index.opensearch import OpenSearchIndex, main
from pipeline.errors import (
    IndexUnavailable,
    MappingRejected,
    PipelineError,
    ThrottledError,
    TransientError,
)
from pipeline.settings import get_settings
from tests.opensearch_fixture import opensearch_url  # noqa: F401  (fixture)
from tests.test_index_contract import doc

pytestmark = pytest.mark.opensearch


@pytest.fixture
def index(opensearch_url: str) -> Iterator[OpenSearchIndex]:  # noqa: F811
    backend = OpenSearchIndex(opensearch_url, f"os-{uuid.uuid4().hex[:10]}", refresh=True)
    try:
        yield backend
    finally:
        backend.client.indices.delete(index=f"{backend.alias}-*", ignore_unavailable=True)
        backend.close()


def _block(index: OpenSearchIndex, value: Any) -> None:
    (concrete,) = index.concrete_indices()
    index.client.indices.put_settings(
        index=concrete, body={"index.blocks.read_only_allow_delete": value})


def test_ensure_index_creates_a_versioned_index_behind_the_alias(
        index: OpenSearchIndex, opensearch_url: str) -> None:  # noqa: F811
    index.ensure_index()
    index.ensure_index()  # idempotent
    assert index.concrete_indices() == [f"{index.alias}-v1"]
    mapping = index.client.indices.get_mapping(index=index.alias)[f"{index.alias}-v1"]
    props = mapping["mappings"]["properties"]
    assert props["metadata"] == {"type": "object", "enabled": False}
    assert props["folder"]["analyzer"] == "folder_prefixes"
    # another process starting later finds everything in place
    other = OpenSearchIndex(opensearch_url, index.alias)
    other.ensure_index()
    assert other.concrete_indices() == [f"{index.alias}-v1"]
    other.close()


def test_read_only_block_is_a_transient_429_and_the_retry_succeeds(
        index: OpenSearchIndex) -> None:
    # Given an index the engine has made read-only (as the disk flood-stage watermark does)
    index.upsert(doc("a.txt", order="s01", text="first"))
    _block(index, True)
    try:
        # When a write arrives, Then the engine answers 429 and the error is transient
        with pytest.raises(TransientError) as caught:
            index.upsert(doc("b.txt", order="s01", text="blocked"))
        assert isinstance(caught.value, ThrottledError | IndexUnavailable)
        assert caught.value.context["status"] == 429
        assert "cluster_block_exception" in str(caught.value)
    finally:
        _block(index, None)
    # And the retried write succeeds once the block is lifted
    assert index.upsert(doc("b.txt", order="s01", text="blocked")) is WriteOutcome.WRITTEN
    assert index.get("uploads/b.txt") is not None


@pytest.mark.parametrize("bad", [{"size": "not-a-number"}, {"pages": "abc"},
                                 {"last_modified": "yesterday"}])
def test_a_mapping_error_rejects_only_its_item(index: OpenSearchIndex,
                                               bad: dict[str, Any]) -> None:
    docs = [doc("one.txt", text="alpha 会議"), doc("two.txt", text="beta 会議", **bad),
            doc("three.txt", text="gamma 会議")]
    first, second, third = index.upsert_many(docs)
    assert first is WriteOutcome.WRITTEN and third is WriteOutcome.WRITTEN
    assert isinstance(second, MappingRejected)
    assert "parsing_exception" in str(second) and str(next(iter(bad))) in str(second)
    assert second.context["doc_id"] == "uploads/two.txt"
    assert sorted(h.key for h in index.search(SearchQuery(text="会議")).hits) == [
        "one.txt", "three.txt"]
    assert index.get("uploads/two.txt") is None
    with pytest.raises(MappingRejected):
        index.upsert(docs[1])


def test_upsert_many_reports_each_outcome(index: OpenSearchIndex) -> None:
    index.upsert(doc("a.txt", order="s05"))
    results = index.upsert_many([doc("a.txt", order="s04"), doc("a.txt", order="s06"),
                                 doc("b.txt", order="")])
    assert results == [WriteOutcome.STALE, WriteOutcome.WRITTEN, WriteOutcome.WRITTEN]
    assert index.upsert_many([]) == []
    with pytest.raises(ValueError, match="order"):
        index.upsert_many([{"id": "x", "bucket": "b", "key": "k"}])


def test_stale_write_is_a_noop_on_the_engine(index: OpenSearchIndex) -> None:
    index.upsert(doc("a.txt", order="s0000000000000000000000000000000002", text="kept"))
    before = index.client.get(index=index.alias, id="uploads/a.txt")
    result = index.upsert(doc("a.txt", order="s0000000000000000000000000000000001", text="old"))
    after = index.client.get(index=index.alias, id="uploads/a.txt")
    assert result is WriteOutcome.STALE
    assert after["_version"] == before["_version"] and after["_source"]["text"] == "kept"


def test_delete_then_late_older_create_leaves_a_tombstone_only(index: OpenSearchIndex) -> None:
    index.upsert(doc("x/gone.txt", order="s10", text="zombie", title="T"))
    assert index.delete("uploads/x/gone.txt", "s11") is WriteOutcome.WRITTEN
    assert index.upsert(doc("x/gone.txt", order="s09", text="zombie")) is WriteOutcome.STALE
    raw = index.client.get(index=index.alias, id="uploads/x/gone.txt")["_source"]
    assert {k: v for k, v in raw.items() if k != "written_at"} == {
        "id": "uploads/x/gone.txt", "order": "s11", "deleted": True, "bucket": "uploads",
        "key": "x/gone.txt"}
    assert index.get("uploads/x/gone.txt") is None and index.count() == 0
    assert index.search(SearchQuery(text="zombie")).total == 0
    assert index.search(SearchQuery(folder="x")).folders == {}


def test_concurrent_writers_end_at_the_newest_order(opensearch_url: str) -> None:  # noqa: F811
    # Given 40 writes of one key, in random order, from 8 threads with their own clients
    orders = [f"s{n:04X}" for n in range(40)]
    random.shuffle(orders)
    alias = f"race-{uuid.uuid4().hex[:10]}"
    OpenSearchIndex(opensearch_url, alias).ensure_index()
    clients = [OpenSearchIndex(opensearch_url, alias) for _ in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(
                lambda i: clients[i % 8].upsert(doc("race.txt", order=orders[i])),
                range(len(orders))))
        # Then the newest order won, and no write failed on a version conflict
        got = clients[0].get("uploads/race.txt")
        assert got is not None and got["order"] == "s0027"
        assert WriteOutcome.WRITTEN in results and all(isinstance(r, WriteOutcome)
                                                       for r in results)
    finally:
        clients[0].client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        for c in clients:
            c.close()


def test_query_syntax_or_and_negation(index: OpenSearchIndex) -> None:
    index.upsert_many([doc("a.txt", text="東京の会議"), doc("b.txt", text="大阪の会議"),
                       doc("c.txt", text="名古屋の打ち合わせ")])
    assert sorted(h.key for h in index.search(SearchQuery(text="会議 -大阪")).hits) == ["a.txt"]
    assert sorted(h.key for h in index.search(SearchQuery(text="大阪 | 名古屋")).hits) == [
        "b.txt", "c.txt"]
    (hit,) = index.search(SearchQuery(text="打ち合わせ")).hits
    assert "[打ち合わせ]" in hit.snippet


def test_rebuild_swaps_the_alias_and_keeps_documents(index: OpenSearchIndex) -> None:
    index.upsert_many([doc(f"r/{i}.txt", text=f"文書 {i} 会議") for i in range(5)])
    index.delete("uploads/r/0.txt", "s99")
    assert index.rebuild(2) == f"{index.alias}-v2"
    assert index.concrete_indices() == [f"{index.alias}-v2"]
    assert index.count() == 4
    assert index.search(SearchQuery(text="会議", folder="r/")).total == 4
    # the tombstone travelled too: the old create is still stale
    assert index.upsert(doc("r/0.txt", order="s01")) is WriteOutcome.STALE
    # writes after the swap land in the new index; the old one is kept for rollback
    assert index.upsert(doc("r/new.txt", text="会議")) is WriteOutcome.WRITTEN
    assert index.client.indices.exists(index=f"{index.alias}-v1")
    assert index.client.count(index=f"{index.alias}-v1")["count"] == 5  # 4 + tombstone
    with pytest.raises(ValueError):
        index.rebuild(2)
    index.rebuild(3, delete_old=True)
    assert not index.client.indices.exists(index=f"{index.alias}-v2")
    assert index.count() == 5


def test_rebuild_keeps_writes_that_land_in_the_old_index_during_the_copy(
        index: OpenSearchIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    index.upsert(doc("a.txt", order="s05", text="original"))
    index.upsert(doc("c.txt", order="s05", text="deleted meanwhile"))
    swap = index.client.indices.update_aliases

    def writes_then_swap(**kwargs: Any) -> Any:
        # Given writes that reach the old index after _reindex took its snapshot
        index.upsert(doc("a.txt", order="s06", text="updated"))
        index.upsert(doc("b.txt", order="s01", text="created"))
        index.delete("uploads/c.txt", "s06")
        return swap(**kwargs)

    monkeypatch.setattr(index.client.indices, "update_aliases", writes_then_swap)
    # When the index is rebuilt
    index.rebuild(2)
    # Then the new index holds them, ordered
    assert index.concrete_indices() == [f"{index.alias}-v2"]
    got = index.get("uploads/a.txt")
    assert got is not None and got["text"] == "updated"
    assert index.get("uploads/b.txt") is not None
    assert index.get("uploads/c.txt") is None
    assert index.upsert(doc("c.txt", order="s05")) is WriteOutcome.STALE


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_explicit_credentials_win_over_the_url() -> None:
    backend = OpenSearchIndex("https://url-user:url-pw@search.example:9200", "x",
                              http_auth=("env-user", "env-pw"))
    (conn,) = backend.client.transport.connection_pool.connections
    assert conn.host == "https://search.example:9200"
    assert conn.headers["authorization"] == "Basic ZW52LXVzZXI6ZW52LXB3"  # env-user:env-pw
    backend.close()


def test_connection_refused_is_index_unavailable() -> None:
    backend = OpenSearchIndex(f"http://127.0.0.1:{_closed_port()}", "nowhere", timeout=2)
    for call in (lambda: backend.upsert(doc("a.txt")), lambda: backend.count(),
                 lambda: backend.search(SearchQuery(text="x")),
                 lambda: backend.delete("uploads/a.txt", "s01")):
        with pytest.raises(IndexUnavailable, match="cannot reach"):
            call()
    backend.close()


def test_a_missing_alias_is_transient_and_recreated(index: OpenSearchIndex) -> None:
    index.ensure_index()
    index.client.indices.delete(index=f"{index.alias}-v1")
    # a write never auto-creates an index with dynamic mappings in place of the alias
    with pytest.raises(IndexUnavailable, match="index_not_found"):
        index.upsert(doc("a.txt"))
    assert not index.client.indices.exists(index=index.alias)
    index.client.indices.create(index=index.alias, body={})  # an index squats the alias name
    try:
        with pytest.raises(IndexUnavailable, match="not an alias"):
            index.upsert(doc("a.txt"))
    finally:
        index.client.indices.delete(index=index.alias)
    results: list[WriteOutcome | PipelineError] = index.upsert_many([doc("a.txt")])
    assert results == [WriteOutcome.WRITTEN]  # alias recreated on the next write
    assert index.concrete_indices() == [f"{index.alias}-v1"]


def test_cli_ensure_and_rebuild(opensearch_url: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                capsys: pytest.CaptureFixture[str]) -> None:
    alias = f"cli-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("OPENSEARCH_URL", opensearch_url)
    monkeypatch.setenv("OPENSEARCH_INDEX", alias)
    get_settings.cache_clear()
    try:
        assert main(["ensure"]) == 0
        assert capsys.readouterr().out.strip() == f"{alias} -> {alias}-v1"
        assert main(["rebuild", "--version", "2", "--delete-old"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == f"{alias} -> {alias}-v2"
        assert main(["rebuild", "--version", "2"]) == 1
        assert "already behind the alias" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
        cleanup = OpenSearchIndex(opensearch_url, alias)
        cleanup.client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        cleanup.close()


def test_an_index_version_without_its_alias_is_reported(index: OpenSearchIndex) -> None:
    index.ensure_index()
    index.client.indices.delete_alias(index=f"{index.alias}-v1", name=index.alias)
    index._ready = False
    with pytest.raises(IndexUnavailable, match="point the alias"):
        index.count()
