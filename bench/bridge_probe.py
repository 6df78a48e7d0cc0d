"""One bridge process against pre-loaded events: how many events per second it moves.

    python -m bench.bridge_probe --mode celery|noop|threaded|raw --expect N [--no-sent-event]

- ``celery``: ``bridge.consumer.Bridge`` with its real dispatch (the Celery chain is sent to
  the broker), logging as ``python -m bridge`` does;
- ``noop``: the same Bridge with a dispatch that does nothing (parse + log + delete only);
- ``threaded``: a prototype, not the shipped bridge: the real dispatch, but the records of one
  batch are enqueued in parallel threads (what a faster bridge could do);
- ``raw``: a bare boto3 loop, receive 10 / delete batch, on the same queue: the ceiling.

``--no-sent-event`` turns Celery's ``task-sent`` event off (``bench.tuning_app``), to show what
that synchronous SNS publish per chain costs.

Prints one JSON line: events, seconds from the first non-empty receive to the last delete, and
CPU seconds of this process over that span.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bridge.consumer import BATCH_SIZE, BatchReport, Bridge, dispatch_chain
from pipeline import aws
from pipeline.logs import setup_logging
from pipeline.objects import ObjectRef
from pipeline.settings import EVENTS_QUEUE, get_settings

MODES = ("celery", "noop", "threaded", "raw")
#: seconds of long poll per receive (short: the queue is pre-loaded)
WAIT_S = 1


class ThreadedBridge(Bridge):
    """Prototype: the messages of one batch are handled (and enqueued) in parallel."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool = ThreadPoolExecutor(BATCH_SIZE)

    def poll_once(self) -> BatchReport:
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=self.wait, AttributeNames=["ApproximateReceiveCount"])
        messages = resp.get("Messages", [])
        reports = [BatchReport(received=1) for _ in messages]
        ok = list(self.pool.map(self.handle, messages, reports))
        report = BatchReport(received=len(messages),
                             enqueued=sum(r.enqueued for r in reports))
        self._delete([m for m, good in zip(messages, ok, strict=True) if good], report)
        return report


def _noop(obj: ObjectRef) -> None:
    return None


def _raw_loop(expect: int) -> tuple[int, float, float]:
    settings = get_settings()
    sqs = aws.sqs(settings)
    url = aws.queue_url(settings.queue_name(EVENTS_QUEUE), settings)
    done, first, cpu0, last = 0, 0.0, 0.0, 0.0
    while done < expect:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=BATCH_SIZE,
                                       WaitTimeSeconds=WAIT_S).get("Messages", [])
        if not messages:
            continue
        if not first:
            first, cpu0 = time.perf_counter(), time.process_time()
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        done += len(messages)
        last = time.perf_counter()
    return done, last - first, time.process_time() - cpu0


def _bridge_loop(bridge: Bridge, expect: int) -> tuple[int, float, float]:
    done, first, cpu0, last = 0, 0.0, 0.0, 0.0
    cpu_before = t_before = 0.0
    while done < expect:
        if not first:
            cpu_before, t_before = time.process_time(), time.perf_counter()
        report = bridge.poll_once()
        if not report.received:
            continue
        if not first:  # count from the start of the first receive that got messages
            first, cpu0 = t_before, cpu_before
        done += len(report.deleted)
        last = time.perf_counter()
    return done, last - first, time.process_time() - cpu0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bridge_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--no-sent-event", action="store_true",
                        help="Celery's task-sent event off (bench.tuning_app)")
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level)
    if args.mode == "raw":
        done, seconds, cpu = _raw_loop(args.expect)
    else:
        if args.no_sent_event:
            import bench.tuning_app  # noqa: F401  (tasks.app with task events off)
        elif args.mode != "noop":
            import tasks  # noqa: F401  (the Celery app, as the bridge loads it on first send)
        bridge: Bridge
        if args.mode == "threaded":
            bridge = ThreadedBridge(settings=settings, wait_time_seconds=WAIT_S)
        else:
            bridge = Bridge(settings, dispatch=_noop if args.mode == "noop" else dispatch_chain,
                            wait_time_seconds=WAIT_S)
        done, seconds, cpu = _bridge_loop(bridge, args.expect)
    print(json.dumps({"mode": args.mode, "no_sent_event": args.no_sent_event, "events": done,
                      "seconds": round(seconds, 4), "cpu_s": round(cpu, 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
