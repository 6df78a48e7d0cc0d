"""``python -m bench [--quick] [--report path.json]``: every row of docs/performance.md, one run.

Starts its own ElasticMQ (SQS) and moto (S3) servers, generates its files in a temporary
folder, runs the reference runs, the pipeline and the heavy rows, prints one table with each
target met or missed, and writes the JSON report.  ``--quick`` scales every row down (20 files,
small "big" PDFs, short timeouts) to check that the machinery works; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import corpus, heavy, pipeline_run, reference, report
from bench.harness import Harness
from devstack.elasticmq import ElasticMQServer
from devstack.elasticmq import version as elasticmq_version
from devstack.stack import RUN_DIR

FULL: dict[str, Any] = {"files": 500, "lag_files": 300, "lag_rate": 5.0, "bridge_events": 2000,
                        "big_pdf_mb": 300, "many_pages": 5000, "hang_s": 10.0,
                        "visibility_timeout": "", "heartbeat_interval": ""}
QUICK: dict[str, Any] = {"files": 20, "lag_files": 15, "lag_rate": 5.0, "bridge_events": 100,
                         "big_pdf_mb": 5, "many_pages": 200, "hang_s": 2.0,
                         "visibility_timeout": "6", "heartbeat_interval": "2"}


def say(text: str) -> None:
    print(text, flush=True)


def endpoints() -> dict[str, str]:
    import moto

    sqs = f"SQS ElasticMQ {elasticmq_version()}"
    s3 = f"S3 moto {moto.__version__}"
    return {"throughput": f"{sqs} + {s3} (limit: {s3}, no queues)",
            "lag": f"{sqs} + {s3}", "bridge": sqs, "overhead": f"{sqs} + {s3}",
            "memory": f"{sqs} + {s3}", "recovery": sqs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny run: checks, not numbers")
    parser.add_argument("--report", type=Path, default=RUN_DIR / "bench-report.json")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR / "bench")
    parser.add_argument("-n", "--files", type=int, default=None, help="small files (row 1)")
    args = parser.parse_args(argv)
    params = dict(QUICK if args.quick else FULL)
    if args.files:
        params["files"] = args.files
    params["mode"] = "quick" if args.quick else "full"
    started = time.monotonic()
    args.run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        say(f"files: {params['files']} small documents, a {params['big_pdf_mb']} MB PDF, "
            f"a {params['many_pages']}-page PDF (in {root}) ...")
        files = corpus.make_small(root / "small", params["files"])
        heavy_params = heavy.HeavyParams(
            big_pdf=corpus.make_big_pdf(root / f"big-{params['big_pdf_mb']}mb.pdf",
                                        params["big_pdf_mb"]),
            many_pages_pdf=corpus.make_many_pages_pdf(
                root / f"pages-{params['many_pages']}.pdf", params["many_pages"]),
            slow_file=root / "crash-me.txt", hang_s=params["hang_s"],
            visibility_timeout=params["visibility_timeout"],
            heartbeat_interval=params["heartbeat_interval"])
        heavy_params.slow_file.write_text("survives a kill -9\n")
        say("starting ElasticMQ (SQS) ...")
        with ElasticMQServer.start(home=args.run_dir / "elasticmq") as sqs:
            harness = Harness(args.run_dir, sqs)
            say("reference runs (limit, old-design baseline, bridge):")
            ref = reference.run(harness, files, params["bridge_events"], say)
            say("pipeline (throughput, CPU, lag):")
            pipe = pipeline_run.run(harness, files, params["lag_files"], params["lag_rate"], say)
            say("heavy (memory, recovery):")
            big = heavy.run(harness, heavy_params, say)
    params["wall_s"] = round(time.monotonic() - started, 1)
    result = report.build(ref, pipe, big, endpoints(), params)
    say("")
    say(report.render(result))
    say(f"\n{params['mode']} run, {params['wall_s']:.0f} s; report: {args.report}")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
