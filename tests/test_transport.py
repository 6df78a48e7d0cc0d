"""Events and remote control over SQS + SNS (broker.transport), on the wire.

Pure parts first (names, orphan rules), then one stack shared by the module: moto server +
bridge + two workers (``worker``, ``worker2``) started from the Procfile's commands, against
which the Celery CLI runs as a subprocess, as an operator runs it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.naming import EVENTS, PIDBOX, REPLY, TAG_HEARTBEAT, TAG_HOST, TAG_KIND, TAG_PID, Namer
from broker.owned import Registry
from broker.sweep import is_orphan
from devstack.ports import free_port
from devstack.stack import ROOT, ProcSpec, Stack
from tests.support import unavailable

# ---- pure -----------------------------------------------------------------------------------


def test_dynamic_queue_names_are_recognisable_and_fit_sqs() -> None:
    namer = Namer("filesearch-")
    oid = "e7000dd0-92c3-372a-b190-8e832597d886"
    assert namer.kind("celeryev.0b6a4c1e-5b7e-4a59-9d43-2f2a6d1d0e11") == EVENTS
    assert namer.kind(f"{oid}.reply.filesearch-celery.pidbox") == REPLY
    assert namer.kind("worker@host.example.com.filesearch-celery.pidbox") == PIDBOX
    for name in ("fetch", "extract-pdf", "filesearch-celeryev", "filesearch-celery.pidbox"):
        assert namer.kind(name) is None, name  # task queues and exchanges are not dynamic

    ev = namer.physical("celeryev.0b6a4c1e-5b7e-4a59-9d43-2f2a6d1d0e11")
    assert re.fullmatch(rf"filesearch-ev-[A-Za-z0-9_-]+-{os.getpid()}-0b6a4c1e", ev), ev
    # the worker derives the reply queue from the routing key alone: same name everywhere
    assert namer.physical(f"{oid}.reply.filesearch-celery.pidbox") == f"filesearch-reply-{oid}"
    assert Namer("filesearch-").physical(f"{oid}.reply.x.pidbox") == f"filesearch-reply-{oid}"
    box = namer.physical("worker@h.filesearch-celery.pidbox")
    assert box.startswith("filesearch-pidbox-") and f"-{os.getpid()}-" in box
    namer.forget("worker@h.filesearch-celery.pidbox")  # deleted: a new name next time (AWS
    assert namer.physical("worker@h.filesearch-celery.pidbox") != box  # refuses reuse for 60 s
    assert all(len(n) <= 80 for n in (ev, box))
    with pytest.raises(ValueError, match="shorter queue prefix"):
        Namer("x" * 70).physical("celeryev.0b6a4c1e-5b7e-4a59-9d43-2f2a6d1d0e11")


def test_orphan_rules() -> None:
    now = 1_000_000.0
    tags = {TAG_KIND: EVENTS, TAG_HOST: "h1", TAG_PID: "42", TAG_HEARTBEAT: str(int(now - 30))}

    def alive(pid: int) -> bool:
        return False

    assert is_orphan(tags, now=now, stale_s=600, host="h1", alive=alive)  # dead pid, here
    assert not is_orphan(tags, now=now, stale_s=600, host="h2", alive=alive)  # elsewhere, fresh
    assert is_orphan({**tags, TAG_HEARTBEAT: str(int(now - 601))}, now=now, stale_s=600,
                     host="h2", alive=alive)  # elsewhere, silent too long
    assert not is_orphan(tags, now=now, stale_s=600, host="h1", alive=lambda pid: True)
    assert not is_orphan({TAG_HOST: "h1", TAG_PID: "42"}, now=now, stale_s=0, host="h1",
                         alive=alive)  # untagged queues are never ours to delete


class _FakeSqs:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_queue(self, QueueUrl: str) -> None:
        self.deleted.append(QueueUrl)


def test_reply_queues_are_kept_for_reuse_then_deleted_when_idle() -> None:
    from broker.owned import OwnedQueue

    sqs = _FakeSqs()
    reg = Registry(heartbeat_s=0)
    reg.add(OwnedQueue("p-reply-1", "url-1", REPLY, sqs))
    reg.add(OwnedQueue("p-ev-1", "url-ev", EVENTS, sqs))
    reg.release("p-reply-1")
    assert sqs.deleted == []  # the next call from the same thread reuses it
    reg.delete_idle(idle_s=0)
    assert sqs.deleted == ["url-1"]
    reg.pid = -1  # as seen from a forked child: never deletes its parent's queues
    reg.delete_all()
    assert sqs.deleted == ["url-1"]


# ---- over the wire --------------------------------------------------------------------------

WORKER = ("celery -A tasks worker --queues fetch,extract-pdf,extract-other,extract-ocr,index "
          "--concurrency 1 --hostname {name}@%h --loglevel INFO")
#: seconds to wait for a process to come up or for queues to settle
SETTLE_TIMEOUT = 45.0


def start_stack(run_dir: Path, *, flower: bool = False, **env: str) -> Stack:
    """moto + provision + bridge + two workers (+ Flower), each on its own free ports."""
    procs = [ProcSpec("bridge", "python -m bridge"), ProcSpec("worker", WORKER.format(
        name="worker")), ProcSpec("worker2", WORKER.format(name="worker2"))]
    if flower:
        procs.append(ProcSpec("flower", flower_command()))
    procfile = run_dir / "no-procfile"
    run_dir.mkdir(parents=True, exist_ok=True)
    procfile.write_text("")
    stack = Stack(run_dir=run_dir, procfile=procfile, extra_procs=procs,
                  env={"BRIDGE_WAIT_TIME_SECONDS": "1", "FLOWER_PORT": str(free_port()),
                       "FLOWER_BASIC_AUTH": "ops:s3cret", **env})
    try:
        stack.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start the local stack: {exc}")
    return stack


def flower_command() -> str:
    """The Procfile's flower line (so the tests run what ``make up`` runs)."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("flower:"))
    return line.split(":", 1)[1].strip()


def celery(stack: Stack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["celery", "-A", "tasks", *args], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=timeout)


class Aws:
    """SQS/SNS clients of a stack and counts of its dynamic queues and subscriptions."""

    def __init__(self, stack: Stack) -> None:
        import boto3

        kw: dict[str, Any] = {"endpoint_url": stack.env["AWS_ENDPOINT_URL"],
                              "region_name": "us-east-1", "aws_access_key_id": "testing",
                              "aws_secret_access_key": "testing"}
        self.sqs = boto3.client("sqs", **kw)
        self.sns = boto3.client("sns", **kw)
        self.s3 = boto3.client("s3", **kw)
        self.prefix = stack.env.get("QUEUE_PREFIX", "filesearch-")

    def queues(self, kind: str = "") -> list[str]:
        urls = self.sqs.list_queues(QueueNamePrefix=self.prefix + kind).get("QueueUrls", [])
        names = [u.rsplit("/", 1)[-1] for u in urls]
        return sorted(n for n in names if not kind or n.startswith(f"{self.prefix}{kind}-"))

    def subscriptions(self) -> list[str]:
        return sorted(s["Endpoint"].rsplit(":", 1)[-1]
                      for s in self.sns.list_subscriptions().get("Subscriptions", []))

    def snapshot(self) -> dict[str, int]:
        return {"ev": len(self.queues("ev")), "pidbox": len(self.queues("pidbox")),
                "reply": len(self.queues("reply")), "subscriptions": len(self.subscriptions())}

    def send_missing_object_event(self, key: str) -> None:
        """An S3 event for a key that does not exist: fetch dead-letters it (FAILURE)."""
        event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                              "eventTime": "2026-12-01T00:00:00.000Z",
                              "eventName": "ObjectCreated:Put",
                              "s3": {"bucket": {"name": "filesearch-uploads"},
                                     "object": {"key": key, "size": 10, "eTag": "0123"}}}]}
        url = self.sqs.get_queue_url(QueueName=f"{self.prefix}events")["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))


def wait_until(check: Any, timeout: float = SETTLE_TIMEOUT, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout}s waiting for {what or check}: last {value!r}")


def ready_count(stack: Stack, name: str) -> int:
    log = stack.logs / f"{name}.log"
    return log.read_text(errors="replace").count(" ready.") if log.exists() else 0


def restart(stack: Stack, name: str, command: str, *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) a stack process and start it again with the same command."""
    before = ready_count(stack, name)
    if kill:
        stack.kill(name)
    else:
        assert stack.terminate(name, timeout=60) == 0
    stack.restart(name, ProcSpec(name, command))
    if name.startswith("worker"):
        wait_until(lambda: ready_count(stack, name) > before, what=f"{name} ready")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("transport"))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.stack
def test_inspect_ping_and_active_are_answered_by_every_worker(stack: Stack) -> None:
    ping = celery(stack, "inspect", "ping", "--timeout", "5")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert re.search(r"worker@\S+: OK", ping.stdout) and re.search(r"worker2@\S+: OK",
                                                                  ping.stdout), ping.stdout
    assert "2 nodes online" in ping.stdout

    active = celery(stack, "inspect", "active", "--json", "--timeout", "5")
    assert active.returncode == 0, active.stdout + active.stderr
    replies = json.loads(active.stdout)
    assert sorted(n.split("@")[0] for n in replies) == ["worker", "worker2"]
    assert all(isinstance(tasks, list) for tasks in replies.values())

    # the CLI's reply queue is gone with the CLI; the workers never created one
    aws = Aws(stack)
    wait_until(lambda: not aws.queues("reply"), what="reply queues removed")


@pytest.mark.stack
def test_task_events_reach_a_monitor_and_its_queue_goes_with_it(stack: Stack) -> None:
    aws = Aws(stack)
    before = aws.snapshot()
    # Given a monitor (celery events --dump) subscribed to the event exchange
    monitor = subprocess.Popen(["celery", "-A", "tasks", "events", "--dump"], cwd=ROOT,
                               env=stack.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until(lambda: len(aws.queues("ev")) == before["ev"] + 1, what="event queue")
        # When a file that does not exist is announced (fetch fails and dead-letters it)
        aws.send_missing_object_event("ghost/monitored.pdf")
        aws.s3.put_object(Bucket="filesearch-uploads", Key="seen/ok.txt", Body=b"hello")
        time.sleep(8)
    finally:
        monitor.send_signal(signal.SIGINT)
        out, _ = monitor.communicate(timeout=30)
    # Then it saw the workers and the task states, including the failure
    for kind in ("heartbeat", "task received", "task started",
                 "task succeeded", "task failed"):
        assert kind in out, (kind, out[-3000:])
    assert "worker2@" in out and "ObjectGone" in out
    assert "task sent" not in out  # task_send_sent_event is off: producers publish no events
    # and its queue and subscription left with it
    wait_until(lambda: aws.snapshot() == before, what=f"back to {before}")


@pytest.mark.stack
def test_worker_restarts_leave_no_queues_or_subscriptions_behind(stack: Stack) -> None:
    aws = Aws(stack)
    baseline = aws.snapshot()
    assert baseline["pidbox"] == 2 and baseline["subscriptions"] >= 2, baseline
    for _ in range(10):
        restart(stack, "worker2", WORKER.format(name="worker2"))
    wait_until(lambda: aws.snapshot() == baseline, what=f"back to {baseline}")
    ping = celery(stack, "inspect", "ping", "--timeout", "5")
    assert "2 nodes online" in ping.stdout, ping.stdout + ping.stderr


@pytest.mark.stack
def test_a_killed_monitors_queue_is_removed_by_the_sweep(stack: Stack) -> None:
    aws = Aws(stack)
    baseline = aws.snapshot()
    monitor = subprocess.Popen(["celery", "-A", "tasks", "events", "--dump"], cwd=ROOT,
                               env=stack.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until(lambda: aws.snapshot()["subscriptions"] == baseline["subscriptions"] + 1,
               what="monitor subscribed")
    os.killpg(monitor.pid, signal.SIGKILL)  # a crash: nothing gets to clean up
    monitor.wait()
    time.sleep(1)
    assert aws.snapshot()["ev"] == baseline["ev"] + 1  # leaked

    swept = subprocess.run([sys.executable, "-m", "broker.sweep"], cwd=ROOT, env=stack.env,
                           capture_output=True, text=True, timeout=60)

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "deleted queue" in swept.stdout and "deleted subscription" in swept.stdout
    assert aws.snapshot() == baseline
    # live owners' queues are kept: the workers still answer
    assert "2 nodes online" in celery(stack, "inspect", "ping", "--timeout", "5").stdout
