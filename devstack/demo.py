"""``make demo``: the main job, unattended, on real files.

Brings the stack up in the background, uploads every file under ``--files`` (keys keep their
relative paths), waits until each has an outcome (indexed, metadata-only or dead-lettered) or
``--timeout`` passes, prints a table, writes ``--report`` JSON and tears everything down.
Exit status 0 only if every file has an outcome.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

from devstack.stack import ROOT, RUN_DIR, Stack

#: the bundled sample set used when no ``--files`` is given
SAMPLES = ROOT / "samples"
#: seconds between outcome polls
POLL_S = 0.5


def iter_files(root: Path) -> list[tuple[Path, str]]:
    """(path, key) for every regular file under ``root``, keys relative with ``/``."""
    return sorted((p, p.relative_to(root).as_posix()) for p in root.rglob("*")
                  if p.is_file() and not p.is_symlink())


def upload(files: list[tuple[Path, str]], bucket: str) -> dict[str, float]:
    """Upload files; returns key -> wall-clock upload time (epoch seconds)."""
    from pipeline import aws

    s3 = aws.s3()
    started: dict[str, float] = {}
    for path, key in files:
        started[key] = time.time()
        s3.upload_file(str(path), bucket, key)
    return started


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def collect(keys: dict[str, float], bucket: str, timeout: float) -> dict[str, dict[str, Any]]:
    """Poll the index and the dead-letter queue until every key has an outcome."""
    from index import get_backend
    from pipeline import deadletter
    from pipeline.objects import document_id

    backend = get_backend()
    outcomes: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    last_dlq_scan = 0.0
    while len(outcomes) < len(keys) and time.monotonic() < deadline:
        for key, uploaded in keys.items():
            if key in outcomes:
                continue
            doc = backend.get(document_id(bucket, key))
            if doc and doc.get("indexed_at") and _epoch(str(doc["indexed_at"])) >= uploaded - 1:
                outcomes[key] = {
                    "key": key, "outcome": doc.get("outcome"), "reason": doc.get("reason"),
                    "content_type": doc.get("content_type"), "pages": doc.get("pages"),
                    "chars": len(doc.get("text") or ""),
                    "seconds": round(_epoch(str(doc["indexed_at"])) - uploaded, 3)}
        if len(outcomes) < len(keys) and time.monotonic() - last_dlq_scan > 3:
            last_dlq_scan = time.monotonic()
            for record in deadletter.read_records():
                key = str(record.get("object", {}).get("key", ""))
                if key in keys and key not in outcomes:
                    outcomes[key] = {
                        "key": key, "outcome": "dead_lettered", "reason": record.get("reason"),
                        "content_type": None, "pages": None, "chars": 0,
                        "seconds": round(_epoch(record["last_failure_at"]) - keys[key], 3)}
        time.sleep(POLL_S)
    return outcomes


def build_report(keys: dict[str, float], outcomes: dict[str, dict[str, Any]],
                 wall: float) -> dict[str, Any]:
    files = [outcomes.get(k, {"key": k, "outcome": "missing", "reason": None,
                              "content_type": None, "pages": None, "chars": 0, "seconds": None})
             for k in keys]
    count = {o: sum(1 for f in files if f["outcome"] == o)
             for o in ("indexed", "metadata_only", "dead_lettered", "missing")}
    return {"files": files, "summary": {**count, "wall_seconds": round(wall, 3)}}


def _width(text: str) -> int:
    """Display width in a terminal: East Asian wide characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    while _width(text) > width:
        text = text[:-1]
    return text + " " * (width - _width(text))


def render_table(report: dict[str, Any]) -> str:
    rows = [("key", "outcome", "reason", "type", "pages", "chars", "seconds")]
    for f in report["files"]:
        rows.append((f["key"], f["outcome"], f["reason"] or "", f["content_type"] or "",
                     "" if f["pages"] is None else str(f["pages"]), str(f["chars"]),
                     "" if f["seconds"] is None else f"{f['seconds']:.2f}"))
    widths = [min(60, max(_width(r[i]) for r in rows)) for i in range(len(rows[0]))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    s = report["summary"]
    lines.append(f"\n{len(report['files'])} files: {s['indexed']} indexed, "
                 f"{s['metadata_only']} metadata-only, {s['dead_lettered']} dead-lettered, "
                 f"{s['missing']} missing; {s['wall_seconds']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=Path, default=SAMPLES)
    parser.add_argument("--report", type=Path, default=RUN_DIR / "demo-report.json")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR,
                        help="state, logs and index of this run (default .run/)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for every outcome after the last upload")
    args = parser.parse_args(argv)
    files = iter_files(args.files.resolve())
    if not files:
        print(f"no files under {args.files}", file=sys.stderr)
        return 2
    print(f"starting the stack (logs in {args.run_dir / 'logs'}) ...", flush=True)
    t0 = time.monotonic()
    with Stack(run_dir=args.run_dir) as stack:
        import os

        os.environ.update(stack.env)  # this process talks to the same endpoint and index
        from pipeline.settings import get_settings

        bucket = get_settings().upload_bucket
        print(f"uploading {len(files)} file(s) from {args.files} ...", flush=True)
        keys = upload(files, bucket)
        outcomes = collect(keys, bucket, args.timeout)
        report = build_report(keys, outcomes, time.monotonic() - t0)
    print(render_table(report))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"report: {args.report}")
    return 0 if report["summary"]["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
