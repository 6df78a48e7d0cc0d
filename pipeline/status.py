"""``make status``: one line per queue and DLQ with its depth.

visible = waiting, in_flight = received and not yet deleted, delayed = retries waiting out
their backoff.  Any DLQ or the dead-letter queue above zero needs an operator
(docs/runbook.md).
"""

from __future__ import annotations

import sys
from typing import Any

from pipeline import aws
from pipeline.provision import queue_specs
from pipeline.settings import Settings, get_settings

_ATTRS = {"visible": "ApproximateNumberOfMessages",
          "in_flight": "ApproximateNumberOfMessagesNotVisible",
          "delayed": "ApproximateNumberOfMessagesDelayed"}


def queue_depths(settings: Settings | None = None) -> list[dict[str, Any]]:
    s = settings or get_settings()
    rows = []
    for spec in queue_specs(s):
        try:
            url = aws.queue_url(spec.name, s)
            attrs = aws.sqs(s).get_queue_attributes(
                QueueUrl=url, AttributeNames=list(_ATTRS.values()))["Attributes"]
            row: dict[str, Any] = {"queue": spec.name,
                                   **{k: int(attrs.get(v, 0)) for k, v in _ATTRS.items()}}
        except Exception as exc:
            row = {"queue": spec.name, "error": aws.error_code(exc) or repr(exc)}
        rows.append(row)
    return rows


def main() -> int:
    rows = queue_depths()
    width = max(len(r["queue"]) for r in rows)
    print(f"{'queue'.ljust(width)}  {'visible':>8}  {'in_flight':>9}  {'delayed':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['queue'].ljust(width)}  {r['error']}")
        else:
            flag = "  <- needs attention" if (r["queue"].endswith(("-dlq", "dead-letter"))
                                             and r["visible"] + r["in_flight"]) else ""
            print(f"{r['queue'].ljust(width)}  {r['visible']:>8}  {r['in_flight']:>9}  "
                  f"{r['delayed']:>8}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
