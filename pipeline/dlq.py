"""Every dead letter of every kind, listed, shown, re-queued or purged: ``python -m pipeline.dlq``.

    python -m pipeline.dlq list [--queue Q|all] [--reason R] [--error-class C] [--prefix P]
                                [--older-than 1h] [--json]
    python -m pipeline.dlq show ID
    python -m pipeline.dlq requeue (ID... | --all) [filters] [--dry-run]
    python -m pipeline.dlq purge (ID... | --all) [filters] --yes

=======  =============================  ==============  ======================================
kind     queue (logical name)           id              requeue
=======  =============================  ==============  ======================================
record   ``dead-letter``                record ``id``   ``chain_for(ref)`` from the start
task     ``<stage>-dlq`` (SQS redrive)  SQS MessageId   body unchanged to ``<stage>``
event    ``events-dlq``                 SQS MessageId   body unchanged to ``events``
=======  =============================  ==============  ======================================

Every action leases the messages (other operators do not see them meanwhile), acts, deletes a
message only after its re-send succeeded, and releases the rest: a second run finds nothing, and
re-running a file is safe anyway (index writes are ordered and repeat-safe).
Exit codes: 0 ok; 1 an explicit ID matched nothing, or a re-send failed; 2 usage.
See docs/runbook.md, "The DLQ is not empty".
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, TypedDict

from bridge.events import parse_message
from pipeline import aws
from pipeline.deadletter import Leased, find_object, lease_all, release
from pipeline.errors import InvalidTaskArguments, MalformedEvent
from pipeline.objects import ObjectRef
from pipeline.provision import queue_specs
from pipeline.settings import DEAD_LETTER_QUEUE, EVENTS_QUEUE, Settings, get_settings

logger = logging.getLogger(__name__)

#: seconds a message stays hidden from others while it is listed / acted upon
LIST_LEASE_S = 30
ACT_LEASE_S = 300
#: tasks whose first argument is the object reference / a stage result holding it under "ref"
REF_ARG_TASKS = ("tasks.fetch", "tasks.remove")
RESULT_ARG_TASKS = ("tasks.extract", "tasks.index")
#: reason of a raw message SQS moved to a DLQ after ``maxReceiveCount`` receives
REDRIVEN = "redriven"
ALL = "all"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

#: enqueue the chain for one object (default: ``tasks.requeue.celery_dispatch()``)
Dispatch = Callable[[ObjectRef], None]
Kind = Literal["record", "task", "event"]


class Skipped(Exception):
    """A dead letter that cannot be re-queued; the message says why."""


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter of any kind, leased from its queue."""

    kind: Kind
    #: record id (records) or SQS MessageId (raw messages)
    id: str
    #: logical queue it sits in: ``dead-letter``, ``fetch-dlq``, ``events-dlq`` ...
    queue: str
    #: logical queue a raw message goes back to; ``None`` for records
    source: str | None
    reason: str
    #: exception class (records), task name (stage DLQs), ``error`` attribute (events DLQ)
    error_class: str
    bucket: str | None
    key: str | None
    #: task attempts (records) or SQS ApproximateReceiveCount (raw; includes our own receives)
    attempts: int
    #: epoch seconds of the failure (record ``last_failure_at``, else SQS SentTimestamp)
    failed_at: float
    #: the decoded record or message, as ``show`` prints it
    payload: Any
    message: Leased

    def age(self, now: float) -> float:
        return max(0.0, now - self.failed_at)

    def row(self, now: float) -> dict[str, Any]:
        """JSON-safe summary: one line of ``list``."""
        return {"id": self.id, "kind": self.kind, "queue": self.queue,
                "age_s": round(self.age(now)), "reason": self.reason,
                "error_class": self.error_class, "bucket": self.bucket, "key": self.key,
                "attempts": self.attempts}


@dataclass(frozen=True)
class Filters:
    """What to select; every field set must match (reason/error_class are shell patterns)."""

    ids: tuple[str, ...] = ()
    reason: str | None = None
    error_class: str | None = None
    #: object key prefix
    prefix: str | None = None
    #: seconds; only dead letters at least this old
    older_than: float | None = None

    @property
    def narrows(self) -> bool:
        return bool(self.ids) or any(v is not None for v in (
            self.reason, self.error_class, self.prefix, self.older_than))

    def matches(self, dl: DeadLetter, now: float) -> bool:
        return ((not self.ids or dl.id in self.ids or dl.message.message_id in self.ids)
                and (self.reason is None or fnmatchcase(dl.reason, self.reason))
                and (self.error_class is None or fnmatchcase(dl.error_class, self.error_class))
                and (self.prefix is None or (dl.key or "").startswith(self.prefix))
                and (self.older_than is None or dl.age(now) >= self.older_than))


class Summary(TypedDict):
    """What ``requeue``/``purge`` did (or, with ``dry_run``, would do)."""

    action: str
    dry_run: bool
    moved: list[dict[str, Any]]
    purged: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    not_found: list[str]
    counts: dict[str, int]


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``15m``, ``2h``, ``1d``, ``1w``.

    Raises:
        ValueError: not a duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 15m, 2h, 1d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def format_age(seconds: float) -> str:
    s = int(seconds)
    for big, big_unit, small, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "m"),
                                             (60, "m", 1, "s")):
        if s >= big:
            return f"{s // big}{big_unit}{(s % big) // small:02d}{small_unit}"
    return f"{s}s"


def dead_letter_queues(settings: Settings) -> dict[str, tuple[str, str | None]]:
    """Logical name of every dead-letter queue -> (physical name, logical source or None)."""
    queues: dict[str, tuple[str, str | None]] = {
        DEAD_LETTER_QUEUE: (settings.queue_name(DEAD_LETTER_QUEUE), None)}
    for spec in queue_specs(settings):
        if spec.dlq:
            queues[f"{spec.logical}-dlq"] = (spec.dlq, spec.logical)
    return queues


# ---- decoding -----------------------------------------------------------------------------


def decode_body(raw: str) -> Any:
    """A message body as JSON, base64-decoded first if needed; ``None`` if neither works.

    kombu's SQS transport base64-encodes bodies by default (``sqs_base64_encoding``); S3
    events and dead-letter records are plain JSON.
    """
    found: Any = None
    for attempt in (lambda: raw, lambda: base64.b64decode(raw.strip(), validate=True).decode()):
        try:
            value = json.loads(attempt())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
        found = value if found is None else found
    return found


def celery_message(envelope: Any) -> dict[str, Any]:
    """Task name, id, args, kwargs and chain from kombu's envelope of a Celery message."""
    if not isinstance(envelope, dict):
        return {}
    headers = envelope.get("headers") or {}
    out: dict[str, Any] = {"task": headers.get("task", ""), "id": headers.get("id"),
                           "retries": headers.get("retries")}
    body = envelope.get("body")
    try:
        if (envelope.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(str(body))
        if isinstance(body, str | bytes):
            body = json.loads(body)
    except (TypeError, ValueError):
        return {**out, "body": "undecodable"}
    if isinstance(body, list) and len(body) == 3:  # protocol 2: [args, kwargs, embed]
        args, kwargs, embed = body
        return {**out, "args": args, "kwargs": kwargs, "chain": (embed or {}).get("chain")}
    if isinstance(body, dict):  # protocol 1
        return {**out, "task": body.get("task", out["task"]), "args": body.get("args"),
                "kwargs": body.get("kwargs")}
    return out


def _epoch(iso: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


def classify(m: Leased, queue: str, source: str | None) -> DeadLetter:
    """The ``DeadLetter`` of one message leased from the logical ``queue``."""
    sent = int(m.attributes.get("SentTimestamp", 0)) / 1000 or time.time()
    receives = int(m.attributes.get("ApproximateReceiveCount", 0))
    attrs = {k: v.get("StringValue", "") for k, v in m.message_attributes.items()}
    payload = decode_body(m.body)
    if source is None:
        rec = payload if isinstance(payload, dict) else {}
        obj = rec.get("object") or {}
        return DeadLetter("record", str(rec.get("id") or m.message_id), queue, None,
                          str(rec.get("reason") or attrs.get("reason") or "unreadable-record"),
                          str(rec.get("error_class") or ""), obj.get("bucket"), obj.get("key"),
                          int(rec.get("attempts") or 0),
                          _epoch(rec.get("last_failure_at")) or sent, rec or m.body, m)
    if source == EVENTS_QUEUE:
        try:
            refs = parse_message(m.body).records
        except MalformedEvent:
            refs = ()
        return DeadLetter("event", m.message_id, queue, source, attrs.get("reason") or REDRIVEN,
                          attrs.get("error", ""), refs[0].bucket if refs else None,
                          refs[0].key if refs else None, receives, sent,
                          {"body": payload if payload is not None else m.body,
                           "message_attributes": attrs}, m)
    task = celery_message(payload)
    obj = find_object([task.get("args"), task.get("kwargs")])
    return DeadLetter("task", m.message_id, queue, source, REDRIVEN, str(task.get("task", "")),
                      obj.get("bucket"), obj.get("key"), receives, sent,
                      {"task": task, "envelope": payload if payload is not None else m.body}, m)


def record_ref(record: Any) -> ObjectRef:
    """The full object reference to run a dead-letter record again from the start.

    Raises:
        Skipped: not a record, unknown task, or no object in its arguments nor ``object``.
    """
    if not isinstance(record, dict):
        raise Skipped("not a dead-letter record (body is not a JSON object)")
    task, args = record.get("task"), record.get("args") or [None]
    if task in REF_ARG_TASKS:
        candidate = args[0]
    elif task in RESULT_ARG_TASKS:
        candidate = args[0].get("ref") if isinstance(args[0], dict) else None
    else:
        raise Skipped(f"unknown task {task!r}")
    for data in (candidate, record.get("object")):
        try:
            ref = ObjectRef.from_dict(data)
        except InvalidTaskArguments:
            continue
        if task == "tasks.remove" and not ref.is_removal:
            ref = dataclasses.replace(ref, event_name="ObjectRemoved:Delete")
        return ref
    raise Skipped(f"{task} arguments hold no object reference")


# ---- leasing and acting -------------------------------------------------------------------


class Lease:
    """The dead letters of the chosen queues, leased; ``close`` releases what was not settled."""

    def __init__(self, settings: Settings, queue: str = ALL, seconds: int = LIST_LEASE_S) -> None:
        queues = dead_letter_queues(settings)
        if queue != ALL and queue not in queues:
            raise ValueError(f"unknown queue {queue!r}; one of: {', '.join([ALL, *queues])}")
        self.settings = settings
        self.items: list[DeadLetter] = []
        self._settled: set[str] = set()
        try:
            for name, (physical, source) in queues.items():
                if queue in (ALL, name):
                    url = aws.queue_url(physical, settings)
                    self.items.extend(classify(m, name, source)
                                      for m in lease_all(url, seconds, settings=settings))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def settle(self, dl: DeadLetter) -> None:
        """Delete ``dl`` from its queue (it was re-sent or is purged)."""
        aws.sqs(self.settings).delete_message(QueueUrl=dl.message.queue_url,
                                              ReceiptHandle=dl.message.receipt_handle)
        self._settled.add(dl.message.receipt_handle)

    def close(self) -> None:
        held: dict[str, list[Leased]] = {}
        for dl in self.items:
            if dl.message.receipt_handle not in self._settled:
                held.setdefault(dl.message.queue_url, []).append(dl.message)
        for messages in held.values():
            release(messages, self.settings)
        self._settled.update(m.receipt_handle for ms in held.values() for m in ms)


def list_dead_letters(settings: Settings | None = None, filters: Filters = Filters(),
                      queue: str = ALL) -> list[DeadLetter]:
    """Every dead letter matching ``filters``, oldest first (all are released again)."""
    now = time.time()
    with Lease(settings or get_settings(), queue) as lease:
        return sorted((d for d in lease.items if filters.matches(d, now)),
                      key=lambda d: d.failed_at)


def show(dead_id: str, settings: Settings | None = None) -> dict[str, Any] | None:
    """Everything about one dead letter (record id or SQS MessageId), or ``None``."""
    found = list_dead_letters(settings, Filters(ids=(dead_id,)))
    if not found:
        return None
    dl = found[0]
    sent = dt.datetime.fromtimestamp(int(dl.message.attributes.get("SentTimestamp", 0)) / 1000,
                                     dt.UTC)
    return {"id": dl.id, "kind": dl.kind, "queue": dl.queue, "requeue_to": dl.source,
            "message_id": dl.message.message_id, "sent_at": sent.isoformat(),
            "receive_count": int(dl.message.attributes.get("ApproximateReceiveCount", 0)),
            ("record" if dl.kind == "record" else "message"): dl.payload}


def requeue(settings: Settings | None = None, filters: Filters = Filters(), queue: str = ALL, *,
            everything: bool = False, dry_run: bool = False,
            dispatch: Dispatch | None = None) -> Summary:
    """Run matching dead letters again; each is deleted only once its re-send succeeded.

    Raises:
        ValueError: neither IDs, a filter nor ``everything`` given; unknown ``queue``.
    """
    s = settings or get_settings()
    if dispatch is None:
        from tasks.requeue import celery_dispatch

        dispatch = celery_dispatch()
    send = dispatch

    def act(dl: DeadLetter) -> str:
        if dl.kind == "record":
            ref = record_ref(dl.payload)
            if not dry_run:
                send(ref)
            return "chain tasks.remove" if ref.is_removal else "chain tasks.fetch"
        target = s.queue_name(str(dl.source))
        if not dry_run:
            aws.sqs(s).send_message(QueueUrl=aws.queue_url(target, s), MessageBody=dl.message.body,
                                    **_attributes(dl.message.message_attributes))
        return target

    return _run("requeue", s, filters, queue, everything, dry_run, act)


def purge(settings: Settings | None = None, filters: Filters = Filters(), queue: str = ALL, *,
          everything: bool = False, dry_run: bool = False) -> Summary:
    """Delete matching dead letters for good.

    Raises:
        ValueError: neither IDs, a filter nor ``everything`` given; unknown ``queue``.
    """
    return _run("purge", settings or get_settings(), filters, queue, everything, dry_run,
                lambda dl: "deleted")


def _attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    kept = {name: {k: v for k, v in a.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, a in attrs.items()}
    return {"MessageAttributes": kept} if kept else {}


def _run(action: str, s: Settings, filters: Filters, queue: str, everything: bool,
         dry_run: bool, act: Callable[[DeadLetter], str]) -> Summary:
    if not (everything or filters.narrows):
        raise ValueError(f"{action}: name IDs, a filter, or all")
    summary = Summary(action=action, dry_run=dry_run, moved=[], purged=[], skipped=[], failed=[],
                      not_found=[], counts={})
    done = summary["moved"] if action == "requeue" else summary["purged"]
    now = time.time()
    with Lease(s, queue, ACT_LEASE_S) as lease:
        chosen = [d for d in lease.items if filters.matches(d, now)]
        seen = {x for d in chosen for x in (d.id, d.message.message_id)}
        summary["not_found"] = [i for i in filters.ids if i not in seen]
        for dl in chosen:
            item: dict[str, Any] = {"id": dl.id, "queue": dl.queue, "bucket": dl.bucket,
                                    "key": dl.key}
            try:
                item["to"] = act(dl)
                if not dry_run:
                    item["sent"] = action == "requeue"
                    lease.settle(dl)
            except Skipped as why:
                summary["skipped"].append({**item, "why": str(why)})
                continue
            except Exception as exc:  # one bad dead letter never stops the others
                error = ("re-sent, but not deleted (a rerun re-sends it, harmless): "
                         if item.pop("sent", False) else "") + repr(exc)
                logger.error("%s failed", action, extra={**item, "error": error})
                summary["failed"].append({**item, "error": error})
                continue
            item.pop("sent", None)
            done.append(item)
    summary["counts"] = {"moved" if action == "requeue" else "purged": len(done),
                         "skipped": len(summary["skipped"]), "failed": len(summary["failed"]),
                         "not_found": len(summary["not_found"])}
    if not dry_run:
        logger.info("%s: %s", action, summary["counts"])
    return summary


# ---- command line -------------------------------------------------------------------------


def _print_rows(rows: list[DeadLetter], now: float) -> None:
    table = [(d.id, d.queue, format_age(d.age(now)), d.reason, d.error_class or "-",
              f"{d.bucket}/{d.key}" if d.key else "-",
              f"attempts={d.attempts}" if d.kind == "record" else f"receives={d.attempts}")
             for d in rows]
    header = ("id", "queue", "age", "reason", "error/task", "object", "tries")
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for r in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"{len(rows)} dead letter(s)")


def _print_summary(summary: Summary) -> None:
    would = {"moved": "would move", "purged": "would purge"} if summary["dry_run"] else {}
    for key, items in (("moved", summary["moved"]), ("purged", summary["purged"]),
                       ("skipped", summary["skipped"]), ("failed", summary["failed"])):
        for item in items:
            where = f"{item['bucket']}/{item['key']}" if item.get("key") else "-"
            extra = item.get("to") or item.get("why") or item.get("error")
            print(f"{would.get(key, key)}  {item['id']}  {item['queue']} -> {extra}  {where}")
    for dead_id in summary["not_found"]:
        print(f"not found  {dead_id}")
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary["counts"].items())
    print(f"{summary['action']}: {counts}" + (" (dry run: nothing changed)"
                                              if summary["dry_run"] else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--queue", default=ALL, help="dead-letter, events-dlq, fetch-dlq ... "
                        "or all (default)")
    common.add_argument("--reason", help="reason, or a pattern such as 'unexpected:*'")
    common.add_argument("--error-class", help="exception class / task name (pattern)")
    common.add_argument("--prefix", help="object key prefix, e.g. reports/2024/")
    common.add_argument("--older-than", type=parse_duration, help="e.g. 30s, 15m, 2h, 1d")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="one line per dead letter")
    sub.add_parser("show", help="one dead letter in full").add_argument("id")
    for name, what in (("requeue", "run again"), ("purge", "delete for good")):
        p = sub.add_parser(name, parents=[common], help=what)
        p.add_argument("ids", nargs="*", metavar="ID")
        p.add_argument("--all", action="store_true", help="every dead letter the filters match")
        p.add_argument("--dry-run", action="store_true", help="show what would happen")
        if name == "purge":
            p.add_argument("--yes", action="store_true", help="really delete")
    return parser


def main(argv: list[str] | None = None, settings: Settings | None = None,
         dispatch: Dispatch | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    s = settings or get_settings()
    if args.command == "show":
        detail = show(args.id, s)
        print(json.dumps(detail, indent=2, ensure_ascii=False) if detail
              else f"not found: {args.id}")
        return 0 if detail else 1
    filters = Filters(tuple(getattr(args, "ids", ())), args.reason, args.error_class,
                      args.prefix, args.older_than)
    if args.queue != ALL and args.queue not in dead_letter_queues(s):
        parser.error(f"--queue: one of {', '.join([ALL, *dead_letter_queues(s)])}")
    if args.command == "list":
        now = time.time()
        rows = list_dead_letters(s, filters, args.queue)
        if args.json:
            print(json.dumps([d.row(now) for d in rows], indent=2, ensure_ascii=False))
        else:
            _print_rows(rows, now)
        return 0
    if bool(args.ids) == args.all:
        parser.error(f"{args.command}: give IDs or --all (not both)")
    if args.command == "purge" and not (args.yes or args.dry_run):
        parser.error("purge deletes for good: add --yes (or --dry-run to preview)")
    if args.command == "requeue":
        summary = requeue(s, filters, args.queue, everything=args.all, dry_run=args.dry_run,
                          dispatch=dispatch)
    else:
        summary = purge(s, filters, args.queue, everything=args.all, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print_summary(summary)
    return 1 if summary["not_found"] or summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
