"""The old design, as a baseline: one loop that receives one message, processes it, deletes it.

    python -m bench.baselines.old_worker --expect N

Consumes the S3 events queue directly (no bridge, no Celery), does the same work per file as
the pipeline (``bench.work.process``) and deletes the message afterwards.  Exits after ``N``
files or ``--idle`` seconds without a message, printing one JSON line: files, seconds from the
first receive to the last delete, and CPU seconds of this process over that span.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.work import cpu_now, process
from bridge.events import parse_message
from pipeline import aws
from pipeline.settings import EVENTS_QUEUE, get_settings

#: seconds of long poll per receive, as the old worker ran it
WAIT_TIME_S = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines.old_worker",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expect", type=int, required=True, help="files to process")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="give up after this many seconds without a message")
    args = parser.parse_args(argv)
    settings = get_settings()
    sqs = aws.sqs(settings)
    url = aws.queue_url(settings.queue_name(EVENTS_QUEUE), settings)
    done = 0
    first = last = 0.0
    cpu0 = 0.0
    idle_since = time.monotonic()
    while done < args.expect and time.monotonic() - idle_since < args.idle:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                       WaitTimeSeconds=min(WAIT_TIME_S, int(args.idle)))
        for message in messages.get("Messages", []):
            if not first:
                first, cpu0 = time.perf_counter(), cpu_now()
            for obj in parse_message(message["Body"]).records:
                process(obj)
                done += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            last = time.perf_counter()
            idle_since = time.monotonic()
    print(json.dumps({"files": done, "seconds": round(last - first, 4),
                      "cpu_s": round(cpu_now() - cpu0, 4)}), flush=True)
    return 0 if done >= args.expect else 1


if __name__ == "__main__":
    sys.exit(main())
