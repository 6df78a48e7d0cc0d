"""Remove dynamic queues whose owner is gone, and their SNS subscriptions.

    python -m broker.sweep [--stale-minutes 10] [--dry-run]

A process that is killed (``kill -9``, OOM, a lost machine) cannot delete its event, reply or
mailbox queues (``broker.owned``).  They keep receiving every event, so they must go.  A
dynamic queue (named ``<prefix>{ev,reply,pidbox}-...`` and tagged ``kombu-dynamic``) is an
orphan when

- its owner ran on this host and its pid is no longer alive, or
- its ``kombu-heartbeat`` tag is older than ``--stale-minutes`` (owners refresh it every
  minute, so a live owner on another host is never older than that).

Then every SQS subscription of an SNS topic whose endpoint is a dynamic queue of this prefix
that no longer exists is removed.  Predefined queues and untagged queues are never touched.
Run it from cron / a scheduler every few minutes, or rely on the transport, which sweeps once
in the background when a process creates its first dynamic queue (``sweep_in_background``).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.naming import KINDS, TAG_HEARTBEAT, TAG_HOST, TAG_KIND, TAG_PID, hostname
from broker.owned import GONE, error_code

logger = logging.getLogger(__name__)

#: minutes without a heartbeat after which a dynamic queue is an orphan
STALE_MINUTES = 10.0


@dataclass
class SweepReport:
    deleted_queues: list[str] = field(default_factory=list)
    kept_queues: list[str] = field(default_factory=list)
    removed_subscriptions: list[str] = field(default_factory=list)


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_orphan(tags: dict[str, str], *, now: float, stale_s: float, host: str,
              alive: Callable[[int], bool] = pid_alive) -> bool:
    """Whether a dynamic queue with these tags has lost its owner (see the module docstring)."""
    if TAG_KIND not in tags:
        return False
    try:
        pid = int(tags.get(TAG_PID, ""))
    except ValueError:
        pid = 0
    if tags.get(TAG_HOST) == host and pid > 0 and not alive(pid):
        return True
    try:
        heartbeat = float(tags.get(TAG_HEARTBEAT, "0"))
    except ValueError:
        heartbeat = 0.0
    return now - heartbeat > stale_s


def dynamic_queue_urls(sqs: Any, prefix: str) -> list[str]:
    """URLs of every queue named like a dynamic queue of ``prefix``."""
    urls: list[str] = []
    for kind in KINDS:
        kwargs: dict[str, Any] = {"QueueNamePrefix": f"{prefix}{kind}-", "MaxResults": 1000}
        while True:
            resp = sqs.list_queues(**kwargs)
            urls += resp.get("QueueUrls", [])
            if not resp.get("NextToken"):
                break
            kwargs["NextToken"] = resp["NextToken"]
    return urls


def sweep(sqs: Any, sns: Any, prefix: str, *, stale_minutes: float = STALE_MINUTES,
          dry_run: bool = False, now: float | None = None, host: str | None = None,
          alive: Callable[[int], bool] = pid_alive) -> SweepReport:
    """Delete orphaned dynamic queues of ``prefix`` and subscriptions to missing ones."""
    report = SweepReport()
    now = time.time() if now is None else now
    host = hostname() if host is None else host
    existing: set[str] = set()
    for url in dynamic_queue_urls(sqs, prefix):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        try:
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        except Exception as exc:
            if error_code(exc) not in GONE:
                logger.warning("cannot read tags of %s: %r", name, exc)
                existing.add(name)
            continue
        if not is_orphan(tags, now=now, stale_s=stale_minutes * 60, host=host, alive=alive):
            report.kept_queues.append(name)
            existing.add(name)
            continue
        report.deleted_queues.append(name)
        if dry_run:
            continue
        try:
            sqs.delete_queue(QueueUrl=url)
            logger.info("sweep: deleted orphaned queue %s (owner %s pid %s)", name,
                        tags.get(TAG_HOST), tags.get(TAG_PID))
        except Exception as exc:
            if error_code(exc) not in GONE:
                logger.warning("sweep: cannot delete %s: %r", name, exc)
                existing.add(name)
    report.removed_subscriptions = _sweep_subscriptions(sqs, sns, prefix, existing, dry_run)
    return report


def _queue_exists(sqs: Any, name: str) -> bool:
    try:
        sqs.get_queue_url(QueueName=name)
    except Exception as exc:
        return error_code(exc) not in GONE
    return True


def _sweep_subscriptions(sqs: Any, sns: Any, prefix: str, existing: set[str],
                         dry_run: bool) -> list[str]:
    removed = []
    kwargs: dict[str, Any] = {}
    while True:
        resp = sns.list_subscriptions(**kwargs)
        for sub in resp.get("Subscriptions", []):
            if sub.get("Protocol") != "sqs":
                continue
            queue = str(sub.get("Endpoint", "")).rsplit(":", 1)[-1]
            dynamic = any(queue.startswith(f"{prefix}{kind}-") for kind in KINDS)
            arn = str(sub.get("SubscriptionArn", ""))
            # a queue created since the listing above is not in ``existing``: ask SQS
            if dynamic and queue not in existing and arn.startswith("arn:") and (
                    dry_run or not _queue_exists(sqs, queue)):
                removed.append(arn)
                if not dry_run:
                    try:
                        sns.unsubscribe(SubscriptionArn=arn)
                    except Exception as exc:
                        logger.warning("sweep: cannot unsubscribe %s: %r", arn, exc)
        if not resp.get("NextToken"):
            return removed
        kwargs["NextToken"] = resp["NextToken"]


_started: set[tuple[int, str]] = set()


def sweep_in_background(sqs: Any, sns: Any, prefix: str,
                        stale_minutes: float = STALE_MINUTES) -> None:
    """Sweep once per process and prefix, in a daemon thread (errors are logged, not raised)."""
    key = (os.getpid(), prefix)
    if key in _started or not prefix:
        return
    _started.add(key)

    def run() -> None:
        try:
            report = sweep(sqs, sns, prefix, stale_minutes=stale_minutes)
            if report.deleted_queues or report.removed_subscriptions:
                logger.info("sweep: removed %d queue(s), %d subscription(s)",
                            len(report.deleted_queues), len(report.removed_subscriptions))
        except Exception as exc:
            logger.warning("sweep failed: %r", exc)

    threading.Thread(target=run, name="dynamic-queue-sweep", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stale-minutes", type=float, default=STALE_MINUTES)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pipeline import aws
    from pipeline.settings import get_settings

    settings = get_settings()
    report = sweep(aws.sqs(settings), aws.sns(settings), settings.queue_prefix,
                   stale_minutes=args.stale_minutes, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for name in report.deleted_queues:
        print(f"{verb} queue {name}")
    for arn in report.removed_subscriptions:
        print(f"{verb} subscription {arn}")
    print(f"{len(report.kept_queues)} dynamic queue(s) kept on {socket.gethostname()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
