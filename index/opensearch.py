"""The OpenSearch backend: the same contract as ``index.sqlite`` on a managed cluster.

Layout.  All reads and writes go through the alias ``<index_name>``, which points at one
concrete index ``<index_name>-v<N>`` (``index.opensearch_mapping``).  ``rebuild(N)`` builds a
new version with ``_reindex`` and swaps the alias atomically, so the mapping can change without
downtime.

Ordering.  Every write is a scripted upsert (``ORDER_SCRIPT``, painless) sent through ``_bulk``:
on the primary shard, under the document's lock, the script compares the incoming ``order``
string with the one held (live document or tombstone) by the rule of ``index.base.supersedes``
and sets ``ctx.op = 'none'`` when stale; the bulk item answers ``noop`` -> ``STALE``.  A delete
writes a tombstone (``deleted: true``; only id/order/bucket/key kept) through the same script,
so a late older create cannot resurrect the document; every read filters ``deleted: false``.

Why not ``version_type=external``: (1) S3 sequencers are hex values of 72 bits and more,
external versions are signed 63-bit longs; (2) orders are strings ("s<hex>", or "t<event
time>" without a sequencer) with no faithful numeric image; (3) an unknown order ("") must
always write, which no version can express; (4) a real delete keeps its version only for
``index.gc_deletes`` (60 s), after which an older create resurrects the document -- the
tombstone never expires.  A sound partial use would need a monotonic number derived from
every order, which does not exist, so external versioning is not used at all.

Errors.  Connection failures and timeouts of a request raise ``IndexUnavailable``; HTTP 429
raises ``ThrottledError``; per bulk item, 429/5xx/cluster blocks are ``TransientError``s and
mapping/parse errors (other 4xx) are ``MappingRejected`` with the engine's reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from index.base import (
    Document,
    Hit,
    IndexBackend,
    SearchQuery,
    SearchResult,
    WriteOutcome,
)
from index.opensearch_mapping import (
    FOLDER_FACET_SIZE,
    MAPPING_VERSION,
    ORDER_SCRIPT,
    SEARCH_FIELDS,
    index_body,
)
from pipeline.errors import (
    IndexUnavailable,
    MappingRejected,
    PipelineError,
    ThrottledError,
)
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

INSTALL = "pip install opensearch-py==3.2.0"
#: times the engine re-runs a scripted update that raced another write to the same id
RETRY_ON_CONFLICT = 5
#: characters of a snippet (highlight fragment, or the start of the text without a match)
SNIPPET_CHARS = 150
#: milliseconds; rebuild catch-up replays writes this much older than the reindex start
CATCH_UP_MARGIN_MS = 60_000
#: seconds between polls of a running ``_reindex`` task
POLL_S = 0.5
#: fields of a ``Document`` a read returns (``None`` when absent), like ``SqliteIndex``
_FIELDS = ("bucket", "key", "folder", "name", "extension", "content_type", "size", "etag",
           "version_id", "last_modified", "title", "author", "pages", "outcome", "reason",
           "truncated", "indexed_at")
_PRE, _POST = "\ue000", "\ue001"  # highlight tags the text cannot contain
_TRANSIENT_TYPES = {"cluster_block_exception", "index_not_found_exception",
                    "version_conflict_engine_exception", "unavailable_shards_exception"}
_LIVE = {"term": {"deleted": False}}
#: one ordered write: (doc id, order, new source, fields kept from the held source)
_Write = tuple[str, str, dict[str, Any], list[str]]


def _opensearchpy() -> Any:
    try:
        import opensearchpy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"the OpenSearch backend needs opensearch-py: {INSTALL}") from exc
    return opensearchpy


def _item_error(doc_id: str, status: int, error: dict[str, Any]) -> PipelineError:
    """The pipeline error for one failed bulk item (transient or ``MappingRejected``)."""
    etype = str(error.get("type", ""))
    reason = f"{etype}: {error.get('reason', '')}"
    cause = error.get("caused_by") or {}
    if cause:
        reason += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
    context = {"doc_id": doc_id, "status": status, "error_type": etype}
    if status == 429 or "rejected_execution" in etype:
        return ThrottledError(reason, **context)
    if status >= 500 or status in (401, 403, 404, 408, 409) or etype in _TRANSIENT_TYPES:
        return IndexUnavailable(reason, **context)
    return MappingRejected(reason, **context)


def _snippet(fragment: str) -> str:
    """``[word]`` markers; adjacent highlights (overlapping CJK bigrams) merge into one."""
    merged = fragment.replace(_POST + _PRE, "")
    return " ".join(merged.replace(_PRE, "[").replace(_POST, "]").split())


class OpenSearchIndex(IndexBackend):
    """``IndexBackend`` on OpenSearch (2.x); see the module docstring for layout and errors."""

    def __init__(self, url: str, index_name: str, *, http_auth: tuple[str, str] | None = None,
                 verify_certs: bool = True, ca_certs: str | None = None, timeout: float = 30,
                 refresh: bool | str = False, replicas: int = 0) -> None:
        """Connect lazily; the index is created on first use (``ensure_index``).

        ``url`` may carry ``user:password@`` (``http_auth`` wins); ``refresh`` is the writes'
        refresh policy (``False``, ``True``, ``"wait_for"``).  Raises ``ImportError`` without
        opensearch-py.
        """
        self._os = _opensearchpy()
        self.alias = index_name
        self.refresh = refresh
        self.replicas = replicas
        self._ready = False
        auth: dict[str, Any] = {}
        if http_auth:  # explicit credentials win over a user:password@ in the URL
            parts = urlsplit(url)
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
            auth["http_auth"] = http_auth
        self.client = self._os.OpenSearch(
            hosts=[url], verify_certs=verify_certs, ca_certs=ca_certs, timeout=timeout,
            max_retries=2, retry_on_timeout=True, **auth)  # every write is safe to repeat

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenSearchIndex:
        """Build from ``pipeline.settings.Settings`` (env ``OPENSEARCH_*``; docs/opensearch.md)."""
        s = settings
        return cls(s.opensearch_url, s.opensearch_index,
                   http_auth=(s.opensearch_user, s.opensearch_password)
                   if s.opensearch_user else None,
                   verify_certs=s.opensearch_verify_certs, ca_certs=s.opensearch_ca_certs or None,
                   timeout=s.opensearch_timeout, replicas=s.opensearch_replicas)

    # ---- transport -------------------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One client call; raises ``IndexUnavailable``/``ThrottledError``/``MappingRejected``."""
        errors = self._os.exceptions
        try:
            return fn(*args, **kwargs)
        except errors.ConnectionError as exc:  # refused, TLS, timeout
            raise IndexUnavailable(f"{what}: cannot reach OpenSearch: {exc}") from exc
        except errors.TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 500
            info = exc.info.get("error") if isinstance(exc.info, dict) else None
            error = info if isinstance(info, dict) else {"type": str(exc.error), "reason": what}
            if error.get("type") == "index_not_found_exception":
                self._ready = False
            raise _item_error("", status, error) from exc

    def ensure_index(self) -> None:
        """Create ``<alias>-v<MAPPING_VERSION>`` behind the alias unless the alias exists.

        Idempotent and safe to race.  Raises ``IndexUnavailable`` when the cluster cannot be
        reached, or when a concrete index (not an alias) already holds the alias name.
        """
        indices = self.client.indices
        if not self._call("exists alias", indices.exists_alias, name=self.alias):
            if self._call("exists index", indices.exists, index=self.alias):
                raise IndexUnavailable(f"{self.alias!r} is an index, not an alias; reindex it "
                                       f"into {self.alias}-v{MAPPING_VERSION} and delete it")
            body = {**index_body(self.replicas),
                    "aliases": {self.alias: {"is_write_index": True}}}
            concrete = f"{self.alias}-v{MAPPING_VERSION}"
            try:
                self._call("create index", indices.create, index=concrete, body=body)
            except MappingRejected as exc:  # another process won the race, or a lost alias
                if "resource_already_exists" not in str(exc):
                    raise
                if not self._call("exists alias", indices.exists_alias, name=self.alias):
                    raise IndexUnavailable(f"{concrete} exists but the alias {self.alias} does "
                                           "not; point the alias at the right version") from exc
        self._ready = True

    def _ensure(self) -> None:
        if not self._ready:
            self.ensure_index()

    # ---- writes ----------------------------------------------------------------------------

    def upsert_many(self, docs: Sequence[Document]) -> list[WriteOutcome | PipelineError]:
        """Write each document unless held at an equal or newer order; one bulk request.

        Returns one entry per doc, in order: its ``WriteOutcome``, or the ``PipelineError`` for
        that item alone.  Raises ``ValueError`` for a doc without id/bucket/key/order, and
        ``IndexUnavailable``/``ThrottledError`` when the request as a whole fails.
        """
        for doc in docs:
            for required in ("id", "bucket", "key", "order"):
                if required not in doc:
                    raise ValueError(f"document lacks {required!r}")
        return self._bulk([(d["id"], d["order"],
                            {**d, "deleted": False, "checksum": d.get("etag")}, [])
                           for d in docs])

    def _bulk(self, writes: Iterable[_Write],
              copy: bool = False) -> list[WriteOutcome | PipelineError]:
        body: list[dict[str, Any]] = []
        ids: list[str] = []
        for doc_id, order, source, keep in writes:
            ids.append(doc_id)
            body.append({"update": {"_index": self.alias, "_id": doc_id,
                                    "retry_on_conflict": RETRY_ON_CONFLICT}})
            params = {"order": order, "doc": source, "keep": keep, "copy": copy}
            body.append({"script": {"lang": "painless", "source": ORDER_SCRIPT,
                                    "params": params},
                         "scripted_upsert": True, "upsert": {}})
        if not body:
            return []
        self._ensure()
        resp = self._call("bulk", self.client.bulk, body=body, refresh=self.refresh,
                          require_alias=True, filter_path="items.*.status,items.*.result,"
                          "items.*.error")
        results: list[WriteOutcome | PipelineError] = []
        for doc_id, item in zip(ids, resp["items"], strict=True):
            res = item["update"]
            if "error" in res:
                error = _item_error(doc_id, int(res.get("status", 500)), res["error"])
                if res["error"].get("type") == "index_not_found_exception":
                    self._ready = False
                logger.warning("index write refused", extra={"doc_id": doc_id,
                                                             "reason": str(error)})
                results.append(error)
            else:
                results.append(WriteOutcome.STALE if res.get("result") == "noop"
                               else WriteOutcome.WRITTEN)
        return results

    def _one(self, write: _Write) -> WriteOutcome:
        (result,) = self._bulk([write])
        if isinstance(result, PipelineError):
            raise result
        return result

    def _upsert(self, doc: Document) -> WriteOutcome:
        (result,) = self.upsert_many([doc])
        if isinstance(result, PipelineError):
            raise result
        return result

    def _delete(self, doc_id: str, order: str) -> WriteOutcome:
        tombstone = {"id": doc_id, "order": order, "deleted": True}
        return self._one((doc_id, order, tombstone, ["bucket", "key"]))

    # ---- reads -----------------------------------------------------------------------------

    def _source(self, doc_id: str, **kwargs: Any) -> dict[str, Any] | None:
        self._ensure()
        resp = self._call("get", self.client.get, index=self.alias, id=doc_id, ignore=404,
                          **kwargs)
        return resp.get("_source") if resp.get("found") else None

    def _current_order(self, doc_id: str) -> str | None:
        source = self._source(doc_id, _source_includes="order")
        return None if source is None else str(source.get("order", ""))

    def _get(self, doc_id: str) -> Document | None:
        source = self._source(doc_id)
        if source is None or source.get("deleted"):
            return None
        doc: dict[str, Any] = {f: source.get(f) for f in _FIELDS}
        doc.update(id=source.get("id", doc_id), order=source.get("order", ""),
                   text=source.get("text") or "", truncated=bool(source.get("truncated")),
                   metadata=source.get("metadata") or {})
        return doc  # type: ignore[return-value]

    def _count(self) -> int:
        self._ensure()
        resp = self._call("count", self.client.count, index=self.alias,
                          body={"query": _LIVE})
        return int(resp["count"])

    def _search(self, query: SearchQuery) -> SearchResult:
        filters: list[dict[str, Any]] = [_LIVE]
        if query.file_type:
            ft = query.file_type.lower().lstrip(".")
            filters.append({"bool": {"should": [{"term": {"content_type": ft}},
                                                {"term": {"extension": ft}}],
                                     "minimum_should_match": 1}})
        if query.folder:
            prefix = query.folder if query.folder.endswith("/") else query.folder + "/"
            filters.append({"term": {"folder": prefix}})
        if query.bucket:
            filters.append({"term": {"bucket": query.bucket}})
        must: dict[str, Any] = {"match_all": {}}
        if query.text.strip():
            must = {"simple_query_string": {"query": query.text, "fields": list(SEARCH_FIELDS),
                                            "default_operator": "and", "lenient": True}}
        body = {
            "query": {"bool": {"must": [must], "filter": filters}},
            "size": query.limit, "track_total_hits": True, "track_scores": True,
            "sort": [{"_score": "desc"}, {"key": "asc"}],
            "_source": {"excludes": ["text", "metadata"]},
            "highlight": {"pre_tags": [_PRE], "post_tags": [_POST], "fields": {"text": {
                "number_of_fragments": 1, "fragment_size": SNIPPET_CHARS,
                "no_match_size": SNIPPET_CHARS}}},
            "aggs": {"folders": {"terms": {"field": "folder.raw", "size": FOLDER_FACET_SIZE}}},
        }
        self._ensure()
        resp = self._call("search", self.client.search, index=self.alias, body=body)
        hits = []
        for h in resp["hits"]["hits"]:
            src = h["_source"]
            hits.append(Hit(id=h["_id"], bucket=src.get("bucket", ""), key=src.get("key", ""),
                            title=src.get("title"), content_type=src.get("content_type") or "",
                            outcome=src.get("outcome") or "", score=float(h.get("_score") or 0),
                            snippet=_snippet((h.get("highlight", {}).get("text") or [""])[0])))
        folders = {b["key"]: int(b["doc_count"])
                   for b in resp["aggregations"]["folders"]["buckets"]}
        return SearchResult(total=int(resp["hits"]["total"]["value"]), hits=hits,
                            folders=folders)

    def close(self) -> None:
        self.client.close()

    # ---- rebuild ---------------------------------------------------------------------------

    def concrete_indices(self) -> list[str]:
        """Concrete indices behind the alias (one, except during a failed swap)."""
        self._ensure()
        return sorted(self._call("get alias", self.client.indices.get_alias, name=self.alias))

    def rebuild(self, new_version: int, *, delete_old: bool = False) -> str:
        """Copy the alias's index into ``<alias>-v<new_version>`` (current mapping) and swap.

        Steps: create the new index; ``_reindex`` (server side) from the old one; swap the
        alias in one atomic ``_aliases`` call; replay writes the old index took meanwhile
        through the ordering script (so nothing written during the rebuild is lost or
        reverted); optionally delete the old index.  Returns the new index name.  Raises
        ``ValueError`` if that index is already behind the alias, ``IndexUnavailable`` and
        ``MappingRejected`` from the engine.
        """
        old = self.concrete_indices()
        new = f"{self.alias}-v{new_version}"
        if new in old:
            raise ValueError(f"{new} is already behind the alias {self.alias}")
        indices = self.client.indices
        since = self._latest_write(old) - CATCH_UP_MARGIN_MS
        self._call("create index", indices.create, index=new, body=index_body(self.replicas))
        task = self._call("reindex", self.client.reindex, wait_for_completion=False,
                          body={"source": {"index": ",".join(old)}, "dest": {"index": new},
                                "conflicts": "proceed"})["task"]
        status = self._call("task", self.client.tasks.get, task_id=task)
        while not status["completed"]:
            time.sleep(POLL_S)
            status = self._call("task", self.client.tasks.get, task_id=task)
        failures = status.get("response", {}).get("failures") or status.get("error")
        if failures:
            raise IndexUnavailable(f"reindex into {new} failed: {failures}")
        self._call("refresh", indices.refresh, index=new)  # searchable from the swap on
        actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": self.alias}}
                                         for i in old]
        actions.append({"add": {"index": new, "alias": self.alias, "is_write_index": True}})
        self._call("swap alias", indices.update_aliases, body={"actions": actions})
        self._catch_up(old, since)
        if delete_old:
            self._call("delete index", indices.delete, index=",".join(old))
        logger.info("rebuilt index", extra={"alias": self.alias, "new": new, "old": old})
        return new

    def _latest_write(self, indices: list[str]) -> int:
        resp = self._call("latest write", self.client.search, index=",".join(indices),
                          body={"size": 0, "aggs": {"w": {"max": {"field": "written_at"}}}})
        return int(resp["aggregations"]["w"]["value"] or 0)

    def _catch_up(self, old: list[str], since: int) -> None:
        """Replay documents written to ``old`` since ``since`` (ms) into the alias, ordered."""
        self._call("refresh", self.client.indices.refresh, index=",".join(old))
        query = {"query": {"range": {"written_at": {"gte": max(since, 0)}}}}
        hits = self._os.helpers.scan(self.client, index=",".join(old), query=query, size=500)
        batch: list[_Write] = []
        while True:
            hit = self._call("scan", next, hits, None)
            if hit is not None:
                src = hit["_source"]
                batch.append((hit["_id"], str(src.get("order", "")), src, []))
            if batch and (hit is None or len(batch) >= 500):
                for result in self._bulk(batch, copy=True):
                    if isinstance(result, PipelineError):
                        raise result
                batch = []
            if hit is None:
                return

def main(argv: list[str] | None = None) -> int:
    """``python -m index.opensearch ensure | rebuild --version N [--delete-old]``."""
    from pipeline.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m index.opensearch",
                                     description="Manage the OpenSearch index and its alias.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="create the index and alias if missing")
    rebuild = sub.add_parser("rebuild", help="reindex into <alias>-v<N> and swap the alias")
    rebuild.add_argument("--version", type=int, required=True)
    rebuild.add_argument("--delete-old", action="store_true")
    args = parser.parse_args(argv)
    backend = OpenSearchIndex.from_settings(get_settings())
    try:
        backend.ensure_index()
        if args.command == "rebuild":
            print(backend.rebuild(args.version, delete_old=args.delete_old))
        print(f"{backend.alias} -> {', '.join(backend.concrete_indices())}")
    except (PipelineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
