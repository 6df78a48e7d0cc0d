"""The embedded default index: SQLite FTS5 with the trigram tokenizer (zero set-up).

Trigrams find substrings in any script, so a Japanese word is found inside a sentence with no
word segmentation.  FTS5 answers terms of three or more characters from the index; shorter
terms (many Japanese words have two characters) fall back to ``LIKE``, which scans.

One row per key in ``documents`` (live, or a tombstone after a delete, keeping the ``order`` that
blocks older creates), and its text in ``documents_fts`` under the same rowid.  Writers in
several processes serialise on ``BEGIN IMMEDIATE``; readers never block (WAL).
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from index.base import (
    Document,
    Hit,
    IndexBackend,
    SearchQuery,
    SearchResult,
    WriteOutcome,
    supersedes,
)
from pipeline.errors import IndexUnavailable

#: seconds a writer waits for another process's write transaction
BUSY_TIMEOUT_S = 30.0
#: characters of context on each side of the first match in a snippet
SNIPPET_CONTEXT = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ord TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    bucket TEXT, key TEXT, folder TEXT, name TEXT, extension TEXT, content_type TEXT,
    size INTEGER, etag TEXT, version_id TEXT, last_modified TEXT, title TEXT, author TEXT,
    pages INTEGER, outcome TEXT, reason TEXT, truncated INTEGER, indexed_at TEXT, metadata TEXT
);
CREATE INDEX IF NOT EXISTS documents_folder ON documents(folder);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    name, folder, title, body, tokenize = 'trigram'
);
"""

_FIELDS = ("bucket", "key", "folder", "name", "extension", "content_type", "size", "etag",
           "version_id", "last_modified", "title", "author", "pages", "outcome", "reason",
           "truncated", "indexed_at")


def _terms(text: str) -> list[str]:
    """Whitespace-separated terms; ``"quoted phrases"`` stay whole."""
    return [a or b for a, b in re.findall(r'"([^"]+)"|(\S+)', text) if (a or b).strip()]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _snippet(body: str, terms: list[str]) -> str:
    lowered = body.lower()
    positions = [p for p in (lowered.find(t.lower()) for t in terms) if p >= 0]
    if not positions:
        return " ".join(body[: SNIPPET_CONTEXT * 2].split())
    start = max(0, min(positions) - SNIPPET_CONTEXT)
    text = " ".join(body[start: min(positions) + SNIPPET_CONTEXT * 2].split())
    return ("…" if start else "") + text + "…"


class SqliteIndex(IndexBackend):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    @property
    def conn(self) -> sqlite3.Connection:
        # one connection per process: a pool child must not reuse its parent's
        if self._conn is None or self._pid != os.getpid():
            self._conn, self._pid = self._open(), os.getpid()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        """Open and set up the file.  Switching a new file to WAL is not covered by the busy
        timeout, so processes opening it at the same moment retry for a while."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                return conn
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise IndexUnavailable(f"cannot open {self.path}: {exc}") from exc
                time.sleep(random.uniform(0.01, 0.1))
            except sqlite3.Error as exc:
                raise IndexUnavailable(f"cannot open {self.path}: {exc}") from exc

    def _write(self, doc_id: str, order: str, apply: Any) -> WriteOutcome:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT rowid, ord FROM documents WHERE id = ?",
                                   (doc_id,)).fetchone()
                if row is not None and not supersedes(order, row["ord"]):
                    conn.execute("ROLLBACK")
                    return WriteOutcome.STALE
                apply(conn, row["rowid"] if row is not None else None)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:  # locked, disk I/O, ...
            raise IndexUnavailable(f"sqlite write failed: {exc}") from exc
        return WriteOutcome.WRITTEN

    def _upsert(self, doc: Document) -> WriteOutcome:
        def apply(conn: sqlite3.Connection, rowid: int | None) -> None:
            values = [doc.get(f) for f in _FIELDS]
            values[_FIELDS.index("truncated")] = int(bool(doc.get("truncated")))
            meta = json.dumps(doc.get("metadata") or {}, ensure_ascii=False, default=str)
            if rowid is None:
                cur = conn.execute(
                    f"INSERT INTO documents (id, ord, deleted, {', '.join(_FIELDS)}, metadata) "
                    f"VALUES (?, ?, 0, {', '.join('?' * len(_FIELDS))}, ?)",
                    (doc["id"], doc["order"], *values, meta))
                rowid = cur.lastrowid
            else:
                conn.execute(
                    f"UPDATE documents SET ord = ?, deleted = 0, "
                    f"{', '.join(f + ' = ?' for f in _FIELDS)}, metadata = ? WHERE rowid = ?",
                    (doc["order"], *values, meta, rowid))
                conn.execute("DELETE FROM documents_fts WHERE rowid = ?", (rowid,))
            conn.execute("INSERT INTO documents_fts (rowid, name, folder, title, body) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (rowid, doc.get("name", ""), doc.get("folder", ""),
                          doc.get("title") or "", doc.get("text", "")))

        return self._write(doc["id"], doc["order"], apply)

    def _delete(self, doc_id: str, order: str) -> WriteOutcome:
        def apply(conn: sqlite3.Connection, rowid: int | None) -> None:
            if rowid is None:
                conn.execute("INSERT INTO documents (id, ord, deleted) VALUES (?, ?, 1)",
                             (doc_id, order))
                return
            conn.execute(f"UPDATE documents SET ord = ?, deleted = 1, "
                         f"{', '.join(f + ' = NULL' for f in _FIELDS)}, metadata = NULL "
                         "WHERE rowid = ?", (order, rowid))
            conn.execute("DELETE FROM documents_fts WHERE rowid = ?", (rowid,))

        return self._write(doc_id, order, apply)

    def _current_order(self, doc_id: str) -> str | None:
        row = self._read("SELECT ord FROM documents WHERE id = ?", (doc_id,))
        return str(row[0]["ord"]) if row else None

    def _get(self, doc_id: str) -> Document | None:
        rows = self._read("SELECT d.*, f.body FROM documents d LEFT JOIN documents_fts f "
                          "ON f.rowid = d.rowid WHERE d.id = ? AND d.deleted = 0", (doc_id,))
        return self._document(rows[0]) if rows else None

    def _count(self) -> int:
        return int(self._read("SELECT count(*) AS n FROM documents WHERE deleted = 0", ())[0]["n"])

    def _search(self, query: SearchQuery) -> SearchResult:
        where: list[str] = ["d.deleted = 0"]
        params: list[Any] = []
        match_terms: list[str] = []
        terms = _terms(query.text)
        for term in terms:
            if len(term) >= 3:
                match_terms.append('"' + term.replace('"', '""') + '"')
            else:
                where.append("(f.name LIKE ? ESCAPE '\\' OR f.folder LIKE ? ESCAPE '\\' OR "
                             "f.title LIKE ? ESCAPE '\\' OR f.body LIKE ? ESCAPE '\\')")
                params.extend([_like(term)] * 4)
        if match_terms:
            where.append("documents_fts MATCH ?")
            params.append(" AND ".join(match_terms))
        if query.file_type:
            ft = query.file_type.lower().lstrip(".")
            where.append("(d.content_type = ? OR d.extension = ?)")
            params.extend([ft, ft])
        if query.folder:
            prefix = query.folder if query.folder.endswith("/") else query.folder + "/"
            # S3 keys are case-sensitive: compare bytes, not LIKE (ASCII case-insensitive)
            where.append("substr(d.folder, 1, ?) = ?")
            params.extend([len(prefix), prefix])
        if query.bucket:
            where.append("d.bucket = ?")
            params.append(query.bucket)
        base = (f"FROM documents d JOIN documents_fts f ON f.rowid = d.rowid "
                f"WHERE {' AND '.join(where)}")
        rank = "bm25(documents_fts)" if match_terms else "0"
        rows = self._read(f"SELECT d.*, f.body, {rank} AS score {base} "
                          f"ORDER BY score, d.key LIMIT ?", (*params, query.limit))
        total = int(self._read(f"SELECT count(*) AS n {base}", tuple(params))[0]["n"])
        folders = {r["folder"]: int(r["n"]) for r in self._read(
            f"SELECT d.folder AS folder, count(*) AS n {base} GROUP BY d.folder "
            f"ORDER BY n DESC LIMIT 20", tuple(params))}
        hits = [Hit(id=r["id"], bucket=r["bucket"], key=r["key"], title=r["title"],
                    content_type=r["content_type"] or "", outcome=r["outcome"] or "",
                    snippet=_snippet(r["body"] or "", terms), score=-float(r["score"] or 0))
                for r in rows]
        return SearchResult(total=total, hits=hits, folders=folders)

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise IndexUnavailable(f"sqlite read failed: {exc}") from exc

    @staticmethod
    def _document(row: sqlite3.Row) -> Document:
        doc: dict[str, Any] = {f: row[f] for f in _FIELDS}
        doc.update(id=row["id"], order=row["ord"], text=row["body"] or "",
                   truncated=bool(row["truncated"]),
                   metadata=json.loads(row["metadata"] or "{}"))
        return doc  # type: ignore[return-value]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
