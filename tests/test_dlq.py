"""``pipeline.dlq`` over the wire (moto server): all three kinds of dead letters, made for real.

- a dead-letter record, written with ``deadletter.build_record`` + ``deadletter.send`` for a
  ``tasks.index`` failure whose arguments carry the full object reference;
- a raw Celery message in ``<prefix>fetch-dlq``: published by a Celery app bound to the
  isolated queues, then received ``maxReceiveCount`` times so that SQS's redrive policy moves it
  (kombu's exact envelope, base64 and all);
- a malformed event in ``<prefix>events-dlq``, put there by the real bridge.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from kombu import Queue

from bridge.consumer import Bridge
from pipeline import aws, deadletter, dlq
from pipeline.errors import IndexUnavailable
from pipeline.objects import ObjectRef
from pipeline.settings import STAGE_QUEUES, Settings

pytestmark = pytest.mark.wire

#: receives of the fetch queue tried before giving up on SQS's redrive
REDRIVE_ROUNDS = 20


class Recorder:
    """A dispatch that records the refs it was asked to run."""

    def __init__(self) -> None:
        self.refs: list[ObjectRef] = []

    def __call__(self, ref: ObjectRef) -> None:
        self.refs.append(ref)


class Seeded:
    """The three dead letters of one test, with what a test needs to check them."""

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.ref = ObjectRef(bucket=settings.upload_bucket, key="reports/2024/q3 報告.pdf",
                             etag="e1", size=1234, sequencer="0055AED6DCD90281E5",
                             event_time="2026-12-01T00:00:00.000Z",
                             event_name="ObjectCreated:Put")
        self.record = put_record(settings, "tasks.index", [{"ref": self.ref.to_dict(),
                                                            "object": {"size": 1234}}])
        self.crash_ref = ObjectRef(bucket=settings.upload_bucket, key="inbox/crash.docx",
                                   etag="e2", event_name="ObjectCreated:Put")
        app.send_task("tasks.fetch", args=[self.crash_ref.to_dict()], queue="fetch")
        self.crash_body = redrive(settings, "fetch")
        self.event_body = "{this is not json"
        put_malformed_event(settings, self.event_body)


def put_record(settings: Settings, task: str, args: list[Any],
               failed_ago: dt.timedelta | None = None) -> deadletter.DeadLetterRecord:
    try:
        raise IndexUnavailable("opensearch: connection refused")
    except IndexUnavailable as exc:
        record = deadletter.build_record(task=task, task_id="t-1", args=args, kwargs={},
                                         exc=exc, attempts=6, queue="index")
    if failed_ago is not None:
        when = (dt.datetime.now(dt.UTC) - failed_ago).isoformat()
        record["first_failure_at"] = record["last_failure_at"] = when
    deadletter.send(record, settings)
    return record


def redrive(settings: Settings, logical: str) -> str:
    """Receive the stage queue's message until SQS moves it to the DLQ; its raw body there."""
    sqs = aws.sqs(settings)
    url = aws.queue_url(settings.queue_name(logical), settings)
    for _ in range(REDRIVE_ROUNDS):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        redriven = peek(settings, settings.dlq_name(logical))
        if redriven:
            return redriven[0]
    pytest.fail(f"{logical}: SQS did not redrive within {REDRIVE_ROUNDS} receives")


def put_malformed_event(settings: Settings, body: str) -> None:
    sqs = aws.sqs(settings)
    sqs.send_message(QueueUrl=aws.queue_url(settings.queue_name("events"), settings),
                     MessageBody=body)
    bridge = Bridge(settings, dispatch=Recorder(), wait_time_seconds=1)
    for _ in range(3):
        if bridge.poll_once().dead_lettered:
            return
    pytest.fail("the bridge did not dead-letter the malformed event")


def peek(settings: Settings, physical: str) -> list[str]:
    """Bodies in a queue, received and made visible again at once."""
    resp = aws.sqs(settings).receive_message(QueueUrl=aws.queue_url(physical, settings),
                                             MaxNumberOfMessages=10, VisibilityTimeout=0,
                                             WaitTimeSeconds=0)
    return [m["Body"] for m in resp.get("Messages", [])]


def run(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str,
        dispatch: dlq.Dispatch | None = None) -> tuple[int, str]:
    code = dlq.main(list(argv), settings=settings, dispatch=dispatch or Recorder())
    return code, capsys.readouterr().out


@pytest.fixture
def celery_app(isolated: Settings) -> Iterator[Celery]:
    """A Celery app whose broker queues are the isolated ones (nothing process-global)."""
    app = Celery(f"test-{isolated.queue_prefix}", set_as_current=False)
    app.conf.update(
        broker_url="sqs://", task_serializer="json", accept_content=["json"],
        broker_transport_options={"region": isolated.region, "predefined_queues": {
            q: {"url": aws.queue_url(isolated.queue_name(q), isolated)} for q in STAGE_QUEUES}},
        task_queues=[Queue(q) for q in STAGE_QUEUES], task_default_queue="fetch",
        task_create_missing_queues=False)
    yield app
    app.close()


@pytest.fixture
def seeded(isolated: Settings, celery_app: Celery) -> Seeded:
    return Seeded(isolated, celery_app)


@pytest.fixture
def tasks_app_loadable(aws_env: dict[str, str]) -> None:
    """``chain_for`` needs ``tasks.app``, whose celeryconfig looks up the default stage queues."""
    settings = Settings.from_env(aws_env)
    for q in STAGE_QUEUES:
        aws.sqs(settings).create_queue(QueueName=settings.queue_name(q))


# ---- pure functions -------------------------------------------------------------------------


def test_decode_body_reads_plain_and_base64_json() -> None:
    assert dlq.decode_body('{"a": 1}') == {"a": 1}
    assert dlq.decode_body("eyJhIjogMX0=") == {"a": 1}  # base64 of {"a": 1}
    assert dlq.decode_body("{this is not json") is None


@pytest.mark.parametrize(("text", "seconds"), [("0s", 0), ("90", 90), ("15m", 900),
                                               ("2h", 7200), ("1d", 86400)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert dlq.parse_duration(text) == seconds


def test_record_ref_takes_the_full_ref_and_refuses_unknown_tasks() -> None:
    ref = {"bucket": "b", "key": "k", "sequencer": "01", "event_name": "ObjectCreated:Put"}
    assert dlq.record_ref({"task": "tasks.extract", "args": [{"ref": ref}]}).sequencer == "01"
    fallback = dlq.record_ref({"task": "tasks.remove", "args": [{"truncated": True}],
                               "object": {"bucket": "b", "key": "k"}})
    assert fallback.is_removal
    with pytest.raises(dlq.Skipped, match="unknown task"):
        dlq.record_ref({"task": "tasks.other", "args": [ref]})
    with pytest.raises(dlq.Skipped, match="no object"):
        dlq.record_ref({"task": "tasks.fetch", "args": [{}], "object": {}})


# ---- over the wire --------------------------------------------------------------------------


def test_list_shows_all_three_kinds(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    rows = {d.kind: d for d in dlq.list_dead_letters(seeded.settings)}

    assert rows["record"].id == seeded.record["id"] and rows["record"].queue == "dead-letter"
    assert (rows["record"].reason, rows["record"].error_class) == ("index-unavailable",
                                                                   "IndexUnavailable")
    assert rows["record"].key == seeded.ref.key and rows["record"].attempts == 6
    assert (rows["task"].queue, rows["task"].reason) == ("fetch-dlq", "redriven")
    assert (rows["task"].error_class, rows["task"].key) == ("tasks.fetch", "inbox/crash.docx")
    assert rows["task"].attempts > seeded.settings.max_receive_count
    assert (rows["event"].queue, rows["event"].reason) == ("events-dlq", "malformed-event")
    assert "not JSON" in rows["event"].error_class and rows["event"].key is None

    code, out = run(seeded.settings, capsys, "list")
    assert code == 0 and "3 dead letter(s)" in out
    assert all(d.id in out for d in rows.values()) and "reports/2024/q3 報告.pdf" in out
    code, out = run(seeded.settings, capsys, "list", "--json")
    assert sorted(r["reason"] for r in json.loads(out)) == ["index-unavailable",
                                                            "malformed-event", "redriven"]


def test_filters_select_by_reason_class_prefix_queue_and_age(seeded: Seeded) -> None:
    old = put_record(seeded.settings, "tasks.fetch", [seeded.ref.to_dict()],
                     failed_ago=dt.timedelta(hours=2))

    def ids(**filters: Any) -> set[str]:
        queue = filters.pop("queue", dlq.ALL)
        return {d.id for d in dlq.list_dead_letters(seeded.settings, dlq.Filters(**filters),
                                                    queue)}

    assert ids(reason="redriven") == {ids(queue="fetch-dlq").pop()}
    assert ids(reason="index-*") == {seeded.record["id"], old["id"]}
    assert ids(error_class="IndexUnavailable", prefix="reports/") == {seeded.record["id"],
                                                                      old["id"]}
    assert ids(prefix="inbox/") == ids(queue="fetch-dlq")
    assert len(ids(older_than=0.0)) == 4
    assert ids(older_than=3600.0) == {old["id"]}
    assert ids(queue="events-dlq", reason="malformed-event") == ids(queue="events-dlq")


def test_requeue_record_sends_one_real_fetch_message_then_finds_nothing(
        seeded: Seeded, celery_app: Celery, tasks_app_loadable: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tasks.requeue import celery_dispatch

    # Given an index failure dead-lettered with its full ref
    record_id = seeded.record["id"]
    # When it is re-queued through a Celery app bound to this test's queues
    code, out = run(seeded.settings, capsys, "requeue", record_id,
                    dispatch=celery_dispatch(celery_app))
    # Then exactly one tasks.fetch message for that object is on the fetch queue ...
    assert code == 0 and "moved" in out and "1 moved" in out
    (body,) = peek(seeded.settings, seeded.settings.queue_name("fetch"))
    message = dlq.celery_message(dlq.decode_body(body))
    assert message["task"] == "tasks.fetch"
    assert message["args"] == [seeded.ref.to_dict()]
    assert [s["task"] for s in message["chain"]] == ["tasks.index", "tasks.extract"]
    # ... and the record is gone, so a second run moves nothing
    assert record_id not in {d.id for d in dlq.list_dead_letters(seeded.settings)}
    code, out = run(seeded.settings, capsys, "requeue", record_id)
    assert code == 1 and f"not found  {record_id}" in out and "0 moved" in out
    assert len(peek(seeded.settings, seeded.settings.queue_name("fetch"))) == 1


def test_requeue_puts_raw_bodies_back_unchanged(seeded: Seeded) -> None:
    recorder = Recorder()
    s = seeded.settings

    summary = dlq.requeue(s, dlq.Filters(reason="redriven"), everything=True,
                          dispatch=recorder)
    summary_events = dlq.requeue(s, queue="events-dlq", everything=True, dispatch=recorder)

    assert summary["counts"]["moved"] == 1 and summary_events["counts"]["moved"] == 1
    assert peek(s, s.queue_name("fetch")) == [seeded.crash_body]
    assert peek(s, s.queue_name("events")) == [seeded.event_body]
    assert peek(s, s.dlq_name("fetch")) == [] and peek(s, s.dlq_name("events")) == []
    assert recorder.refs == []  # raw messages are re-sent as they are, no new chain
    assert dlq.requeue(s, everything=True, queue="fetch-dlq")["counts"]["moved"] == 0


def test_record_requeue_dispatches_the_full_ref_and_skips_what_it_cannot(
        seeded: Seeded) -> None:
    unknown = put_record(seeded.settings, "tasks.mystery", [seeded.ref.to_dict()])
    recorder = Recorder()

    summary = dlq.requeue(seeded.settings, queue="dead-letter", everything=True,
                          dispatch=recorder)

    assert recorder.refs == [seeded.ref]
    assert [m["id"] for m in summary["moved"]] == [seeded.record["id"]]
    assert summary["skipped"] == [{"id": unknown["id"], "queue": "dead-letter",
                                   "bucket": seeded.ref.bucket, "key": seeded.ref.key,
                                   "why": "unknown task 'tasks.mystery'"}]
    assert [d.id for d in dlq.list_dead_letters(seeded.settings, queue="dead-letter")] == [
        unknown["id"]]


def test_a_failed_dispatch_keeps_the_record(seeded: Seeded,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def broker_down(ref: ObjectRef) -> None:
        raise ConnectionError("broker unreachable")

    code, out = run(seeded.settings, capsys, "requeue", seeded.record["id"],
                    dispatch=broker_down)

    assert code == 1 and "failed" in out and "broker unreachable" in out
    assert seeded.record["id"] in {d.id for d in dlq.list_dead_letters(seeded.settings)}


def test_dry_run_changes_nothing(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(d.id for d in dlq.list_dead_letters(seeded.settings))
    recorder = Recorder()

    code, out = run(seeded.settings, capsys, "requeue", "--all", "--dry-run", dispatch=recorder)
    assert code == 0 and "3 moved" in out and "would move" in out and "dry run" in out
    code, out = run(seeded.settings, capsys, "purge", "--all", "--dry-run")
    assert code == 0 and "3 purged" in out

    assert recorder.refs == []
    assert sorted(d.id for d in dlq.list_dead_letters(seeded.settings)) == before
    assert peek(seeded.settings, seeded.settings.queue_name("fetch")) == []


def test_purge_deletes_only_what_matches(seeded: Seeded,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        run(seeded.settings, capsys, "purge", "--all", "--reason", "malformed-event")
    assert usage.value.code == 2  # no --yes

    code, out = run(seeded.settings, capsys, "purge", "--all", "--reason", "malformed-event",
                    "--yes")

    assert code == 0 and "1 purged" in out
    assert sorted(d.reason for d in dlq.list_dead_letters(seeded.settings)) == [
        "index-unavailable", "redriven"]


def test_show_and_usage_errors(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(seeded.settings, capsys, "show", seeded.record["id"])
    assert code == 0 and json.loads(out)["record"]["task"] == "tasks.index"
    (task,) = dlq.list_dead_letters(seeded.settings, queue="fetch-dlq")
    code, out = run(seeded.settings, capsys, "show", task.id)
    assert json.loads(out)["message"]["task"]["args"] == [seeded.crash_ref.to_dict()]
    assert run(seeded.settings, capsys, "show", "no-such-id")[0] == 1
    for argv in (["requeue"], ["requeue", "x", "--all"], ["list", "--older-than", "soon"],
                 ["list", "--queue", "nope"]):
        with pytest.raises(SystemExit) as usage:
            run(seeded.settings, capsys, *argv)
        assert usage.value.code == 2, argv


def test_requeue_task_passes_its_kwargs_to_the_library(
        tasks_app_loadable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.requeue import requeue as requeue_task

    seen: dict[str, Any] = {}

    def fake(settings: Settings | None, filters: dlq.Filters, queue: str,
             **kwargs: Any) -> dlq.Summary:
        seen.update(filters=filters, queue=queue, **kwargs)
        return dlq.Summary(action="requeue", dry_run=False, moved=[], purged=[], skipped=[],
                           failed=[], not_found=[], counts={"moved": 0})

    monkeypatch.setattr(dlq, "requeue", fake)
    result = requeue_task.apply(kwargs={"reason": "index-unavailable", "prefix": "reports/",
                                        "older_than": "2h", "queue": "all"}).get()

    assert result["counts"] == {"moved": 0}
    assert seen["filters"] == dlq.Filters(reason="index-unavailable", prefix="reports/",
                                          older_than=7200.0)
    assert seen["queue"] == "all" and seen["everything"] is False
    assert requeue_task.app.amqp.router.route({}, "tasks.requeue")["queue"].name == "fetch"
