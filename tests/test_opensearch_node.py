"""A real OpenSearch node over HTTP: cjk analysis, path_hierarchy folders, clean shutdown."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from devstack.opensearch import OpenSearchError, OpenSearchNode
from tests.opensearch_fixture import opensearch_url, unavailable  # noqa: F401

FOLDER = "報告書/2024 年度/"
CONTENT = "来週の打ち合わせに向けて、東京都の会議資料を共有フォルダに置きました。"

# path_hierarchy alone emits "報告書", "報告書/2024 年度", "報告書/2024 年度/" (only the full
# path keeps its trailing slash); the pattern_replace filter gives every prefix exactly one
# trailing "/", so a term filter on "報告書/" matches everything below that folder and "報告書"
# cannot also match "報告書2/...".
INDEX_BODY: dict[str, Any] = {
    "settings": {
        "number_of_shards": 1,
        "number_of_replicas": 0,
        "analysis": {
            "tokenizer": {"folder_tokenizer": {"type": "path_hierarchy", "delimiter": "/"}},
            "filter": {
                "folder_trailing_slash": {
                    "type": "pattern_replace",
                    "pattern": "^(.*?)/*$",
                    "replacement": "$1/",
                }
            },
            "analyzer": {
                "folder_prefixes": {
                    "type": "custom",
                    "tokenizer": "folder_tokenizer",
                    "filter": ["folder_trailing_slash", "unique"],
                }
            },
        },
    },
    "mappings": {
        "properties": {
            "content": {"type": "text", "analyzer": "cjk"},
            "folder": {
                "type": "text",
                "analyzer": "folder_prefixes",
                "search_analyzer": "keyword",
            },
        }
    },
}


@pytest.fixture
def client(opensearch_url: str) -> Iterator[OpenSearch]:  # noqa: F811
    es = OpenSearch(hosts=[opensearch_url], timeout=30)
    try:
        yield es
    finally:
        es.close()


@pytest.fixture
def index(client: OpenSearch) -> Iterator[str]:
    name = f"test-opensearch-node-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=name, body=INDEX_BODY)
    try:
        yield name
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)


def _hits(client: OpenSearch, index: str, query: dict[str, Any]) -> list[str]:
    resp = client.search(index=index, body={"query": query})
    return [hit["_id"] for hit in resp["hits"]["hits"]]


def test_cjk_and_folder_search(client: OpenSearch, index: str) -> None:
    tokens = client.indices.analyze(index=index, body={"field": "folder", "text": FOLDER})
    assert [t["token"] for t in tokens["tokens"]] == ["報告書/", "報告書/2024 年度/"]

    client.index(index=index, id="doc-1", body={"content": CONTENT, "folder": FOLDER})
    client.indices.refresh(index=index)

    health = client.cluster.health(index=index, wait_for_status="green")
    assert health["status"] == "green"

    assert _hits(client, index, {"match": {"content": "会議"}}) == ["doc-1"]
    in_folder = {
        "bool": {
            "must": [{"match": {"content": "会議資料"}}],
            "filter": [{"term": {"folder": "報告書/"}}],
        }
    }
    assert _hits(client, index, in_folder) == ["doc-1"]
    assert _hits(client, index, {"term": {"folder": FOLDER}}) == ["doc-1"]
    assert _hits(client, index, {"match": {"content": "予算"}}) == []
    assert _hits(client, index, {"term": {"folder": "報告"}}) == []
    assert _hits(client, index, {"term": {"folder": "2024 年度/"}}) == []


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_node_stops_cleanly(tmp_path: Path) -> None:
    """Starts a second, private node (about 5 s and 0.5 GB heap) and stops it with SIGTERM."""
    if os.environ.get("OPENSEARCH_URL"):
        pytest.skip("OPENSEARCH_URL points at an external cluster; not starting a private node")
    error = ""
    try:
        node = OpenSearchNode.start(tmp_path / "home")
    except OpenSearchError as exc:
        error = str(exc)
    if error:
        unavailable(error)
    with node:
        assert node.proc.poll() is None
        probe = OpenSearch(hosts=[node.url])
        assert probe.cluster.health()["number_of_nodes"] == 1
        probe.close()
    assert node.proc.poll() is not None, "JVM still running after stop()"
    assert not node.killed, f"needed SIGKILL; log tail:\n{node.log_tail()}"
    assert node.proc.returncode in (0, 143), node.log_tail()  # 143 = exit after SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(node.pid, 0)
    assert not _port_open(node.http_port)
    assert node.log is not None
    log = node.log.read_text(encoding="utf-8")
    assert "OPENSEARCH_READY http://127.0.0.1:" in log
    assert "closed" in log.splitlines()[-1], node.log_tail()
    assert node.stop() == node.proc.returncode  # idempotent
