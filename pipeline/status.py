"""``make status``: one line per queue and DLQ with its depth and the age of its oldest message.

visible = waiting, in_flight = received and not yet deleted, delayed = retries waiting out
their backoff.  Any DLQ or the dead-letter queue above zero needs an operator
(docs/runbook.md).

The age of the oldest message (for a stage queue: the indexing lag) has no SQS API attribute.
Where it comes from (column ``src``):

- ``cw``: CloudWatch's ``ApproximateAgeOfOldestMessage`` (``PIPELINE_PROFILE=production``);
  the production metric, at one-minute resolution.
- ``peek``: a receive with ``VisibilityTimeout=0`` of up to 10 visible messages, reading their
  ``SentTimestamp``.  A receive counts towards ``maxReceiveCount``, so queues with a redrive
  policy (the working queues) are only peeked with ``--peek`` (never in a loop: each peek
  brings waiting messages one receive closer to their DLQ).  SQS samples a subset of its
  servers, so on AWS a peek gives a lower bound; the local endpoint returns the oldest first.
- ``-``: not measured (nothing visible, or a working queue without ``--peek``).

    python -m pipeline.status [--peek] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from pipeline import aws
from pipeline.provision import QueueSpec, queue_specs
from pipeline.settings import Settings, get_settings

_ATTRS = {"visible": "ApproximateNumberOfMessages",
          "in_flight": "ApproximateNumberOfMessagesNotVisible",
          "delayed": "ApproximateNumberOfMessagesDelayed"}
#: SQS returns at most 10 messages per receive
PEEK_MAX = 10
#: seconds of CloudWatch history searched for the latest datapoint
CLOUDWATCH_WINDOW_S = 600


def queue_depths(settings: Settings | None = None, *, peek: bool = False) -> list[dict[str, Any]]:
    """One row per queue: ``queue``, ``visible``, ``in_flight``, ``delayed``, ``oldest_age_s``
    (seconds or None) and ``age_source`` (``cw``, ``peek`` or ``-``); ``error`` instead when
    the queue cannot be read.

    Args:
        peek: also peek queues that have a redrive policy (see the module docstring).
    """
    s = settings or get_settings()
    rows = []
    for spec in queue_specs(s):
        try:
            url = aws.queue_url(spec.name, s)
            attrs = aws.sqs(s).get_queue_attributes(
                QueueUrl=url, AttributeNames=list(_ATTRS.values()))["Attributes"]
            row: dict[str, Any] = {"queue": spec.name,
                                   **{k: int(attrs.get(v, 0)) for k, v in _ATTRS.items()}}
            row["oldest_age_s"], row["age_source"] = oldest_age(s, spec, url, row["visible"],
                                                                peek=peek)
        except Exception as exc:
            row = {"queue": spec.name, "error": aws.error_code(exc) or repr(exc)}
        rows.append(row)
    return rows


def oldest_age(s: Settings, spec: QueueSpec, url: str, visible: int, *,
               peek: bool = False) -> tuple[float | None, str]:
    """(seconds, source) of the oldest message of one queue; (None, "-") if not measured."""
    if not s.is_local:
        return cloudwatch_age(s, spec.name), "cw"
    if visible == 0 or (spec.dlq is not None and not peek):
        return None, "-"
    return peek_age(s, url), "peek"


def peek_age(s: Settings, url: str, now: float | None = None) -> float | None:
    """Age in seconds of the oldest of up to 10 visible messages, left visible."""
    resp = aws.sqs(s).receive_message(QueueUrl=url, MaxNumberOfMessages=PEEK_MAX,
                                      VisibilityTimeout=0, WaitTimeSeconds=0,
                                      MessageSystemAttributeNames=["SentTimestamp"])
    sent = [int(m["Attributes"]["SentTimestamp"]) / 1000 for m in resp.get("Messages", [])
            if "SentTimestamp" in m.get("Attributes", {})]
    if not sent:
        return None
    return max(0.0, (time.time() if now is None else now) - min(sent))


def cloudwatch_age(s: Settings, queue: str) -> float | None:
    """Latest ``ApproximateAgeOfOldestMessage`` (Maximum, seconds) of ``queue``, or None."""
    import boto3

    end = dt.datetime.now(dt.UTC)
    resp = boto3.client("cloudwatch", region_name=s.region).get_metric_statistics(
        Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue}],
        StartTime=end - dt.timedelta(seconds=CLOUDWATCH_WINDOW_S), EndTime=end, Period=60,
        Statistics=["Maximum"])
    points = sorted(resp.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def format_age(seconds: float | None) -> str:
    """``-``, ``42s``, ``5m03s``, ``2h05m`` or ``3d04h``."""
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def render(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["queue"]) for r in rows)
    lines = [f"{'queue'.ljust(width)}  {'visible':>8}  {'in_flight':>9}  {'delayed':>8}  "
             f"{'oldest':>7}  src"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['queue'].ljust(width)}  {r['error']}")
            continue
        flag = "  <- needs attention" if (r["queue"].endswith(("-dlq", "dead-letter"))
                                         and r["visible"] + r["in_flight"]) else ""
        lines.append(f"{r['queue'].ljust(width)}  {r['visible']:>8}  {r['in_flight']:>9}  "
                     f"{r['delayed']:>8}  {format_age(r['oldest_age_s']):>7}  "
                     f"{r['age_source']:<4}{flag}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.status", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peek", action="store_true",
                        help="also peek working queues (counts as a receive; see above)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = queue_depths(peek=args.peek)
    print(json.dumps(rows, indent=2) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
