"""Reliability over the wire: retries, dead letters, the visibility heartbeat, crashes.

Each test starts its own stack (moto server + bridge + worker subprocesses) with fault
injection and short timeouts, then watches what an operator would: the index, the queues, the
dead-letter queue and the workers' JSON logs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import ProcSpec, Stack
from tests.support import unavailable
from tests.test_pipeline_e2e import Running

pytestmark = pytest.mark.stack

WORKER = ("celery -A tasks worker --queues fetch,extract-pdf,extract-other,extract-ocr,index "
          "--concurrency 1 --hostname {name}@%h --loglevel INFO")


def start(tmp_path: Path, env: dict[str, str], workers: tuple[str, ...] = ("worker",)) -> Stack:
    procs = [ProcSpec("bridge", "python -m bridge")]
    procs += [ProcSpec(name, WORKER.format(name=name)) for name in workers]
    stack = Stack(run_dir=tmp_path, procfile=tmp_path / "no-procfile", extra_procs=procs,
                  env={"BRIDGE_WAIT_TIME_SECONDS": "1", **env})
    (tmp_path / "no-procfile").write_text("")
    try:
        stack.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start the local stack: {exc}")
    return stack


@pytest.fixture
def stacks() -> Iterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for stack in started:
        stack.stop()


def log_lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    path = stack.logs / f"{name}.log"
    lines = []
    for raw in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def events_for(stack: Stack, name: str, key: str, msg: str) -> list[dict[str, Any]]:
    return [e for e in log_lines(stack, name) if e.get("key") == key and msg in e.get("msg", "")]


def test_transient_failures_are_retried_with_backoff_then_dead_lettered_once(
        tmp_path: Path, stacks: list[Stack]) -> None:
    # Given an index that always fails for keys under flaky/
    stack = start(tmp_path, {"FAULT_INDEX_TRANSIENT_P": "1", "FAULT_KEY_PREFIX": "flaky/",
                             "MAX_RETRIES": "3", "RETRY_BACKOFF_BASE": "1",
                             "RETRY_BACKOFF_MAX": "8"})
    stacks.append(stack)
    run = Running(stack)
    key = "flaky/report.txt"

    # When a file arrives
    run.s3.put_object(Bucket=run.bucket, Key=key, Body=b"quarterly report")

    # Then it is dead-lettered exactly once, after 1 try + 3 retries
    (record,) = run.wait_for(lambda: [r for r in run.dead_letters()
                                      if r["object"].get("key") == key], timeout=90)
    assert record["reason"] == "index-unavailable" and record["attempts"] == 4
    assert record["task"] == "tasks.index" and record["error_class"] == "IndexUnavailable"
    assert record["first_failure_at"] < record["last_failure_at"]
    retries = [e for e in log_lines(stack, "worker") if "transient failure, retry" in e["msg"]]
    delays = [int(re.search(r"in (\d+)s", e["msg"]).group(1)) for e in retries]  # type: ignore[union-attr]
    assert len(delays) == 3
    for attempt, delay in enumerate(delays):  # exponential ceiling with "equal jitter"
        ceiling = min(8, 2 ** attempt)
        assert max(1, ceiling / 2 - 1) <= delay <= ceiling
    time.sleep(3)
    assert len([r for r in run.dead_letters() if r["object"].get("key") == key]) == 1
    assert run.doc(key) is None
    # other files are unaffected
    run.s3.put_object(Bucket=run.bucket, Key="fine/ok.txt", Body=b"all good")
    assert run.wait_for(lambda: run.doc("fine/ok.txt"))["outcome"] == "indexed"


def test_task_three_times_longer_than_visibility_runs_once(
        tmp_path: Path, stacks: list[Stack]) -> None:
    # Given two workers, a 6 s visibility timeout kept alive by a 2 s heartbeat,
    # and an extraction that takes 20 s (more than 3x the visibility timeout)
    stack = start(tmp_path, {"VISIBILITY_TIMEOUT": "6", "HEARTBEAT_INTERVAL": "2",
                             "FAULT_EXTRACT_HANG_S": "20", "FAULT_KEY_PREFIX": "slow/"},
                  workers=("worker", "worker2"))
    stacks.append(stack)
    run = Running(stack)
    key = "slow/big.txt"

    run.s3.put_object(Bucket=run.bucket, Key=key, Body=b"a long document")

    assert run.wait_for(lambda: run.doc(key), timeout=90)["outcome"] == "indexed"
    time.sleep(8)  # longer than a visibility timeout: a second delivery would show by now
    hangs = [e for w in ("worker", "worker2") for e in
             events_for(stack, w, key, "injected fault: extraction hangs")]
    assert len(hangs) == 1, hangs
    extracted = [e for w in ("worker", "worker2") for e in events_for(stack, w, key, "extracted")]
    assert len(extracted) == 1


def test_kill_9_mid_task_is_recovered_by_another_worker_within_the_visibility_timeout(
        tmp_path: Path, stacks: list[Stack]) -> None:
    stack = start(tmp_path, {"VISIBILITY_TIMEOUT": "9", "HEARTBEAT_INTERVAL": "3",
                             "FAULT_EXTRACT_HANG_S": "6", "FAULT_KEY_PREFIX": "slow/"},
                  workers=("worker", "worker2"))
    stacks.append(stack)
    run = Running(stack)
    key = "slow/crash-me.txt"
    run.s3.put_object(Bucket=run.bucket, Key=key, Body=b"survives a crash")

    # When the worker extracting it is killed with SIGKILL (with its pool processes)
    victim = run.wait_for(lambda: next((w for w in ("worker", "worker2") if events_for(
        stack, w, key, "injected fault: extraction hangs")), None), timeout=60)
    killed_at = time.monotonic()
    stack.kill(victim)

    # Then the other worker takes the message once its visibility times out, and finishes
    survivor = "worker2" if victim == "worker" else "worker"
    run.wait_for(lambda: events_for(stack, survivor, key, "injected fault: extraction hangs"),
                 timeout=60)
    picked_up_after = time.monotonic() - killed_at
    assert picked_up_after <= 9 + 2 * 3 + 5, picked_up_after  # not a 15-minute static timeout
    assert run.wait_for(lambda: run.doc(key), timeout=60)["outcome"] == "indexed"


def test_sigterm_mid_task_finishes_it_once_without_waiting_for_visibility(
        tmp_path: Path, stacks: list[Stack]) -> None:
    # Given a 30 s visibility timeout (a release that waited for it would show) and a 6 s task
    stack = start(tmp_path, {"VISIBILITY_TIMEOUT": "30", "HEARTBEAT_INTERVAL": "10",
                             "FAULT_EXTRACT_HANG_S": "6", "FAULT_KEY_PREFIX": "slow/"},
                  workers=("worker", "worker2"))
    stacks.append(stack)
    run = Running(stack)
    key = "slow/deploy-time.txt"
    run.s3.put_object(Bucket=run.bucket, Key=key, Body=b"indexed across a deploy")
    victim = run.wait_for(lambda: next((w for w in ("worker", "worker2") if events_for(
        stack, w, key, "injected fault: extraction hangs")), None), timeout=60)
    signalled_at = time.monotonic()

    # When that worker gets SIGTERM mid-task (a deploy)
    code = stack.terminate(victim, timeout=60)

    # Then it finishes the running task before exiting, and the file is indexed once, soon
    assert code == 0
    assert events_for(stack, victim, key, "extracted"), "the running task was not finished"
    assert run.wait_for(lambda: run.doc(key), timeout=60)["outcome"] == "indexed"
    assert time.monotonic() - signalled_at < 25  # no wait for the 30 s visibility timeout
    hangs = [e for w in ("worker", "worker2") for e in
             events_for(stack, w, key, "injected fault: extraction hangs")]
    assert len(hangs) == 1


def test_chaos_soak_loses_nothing(tmp_path: Path) -> None:
    """A short ``make chaos``: faults + kill -9 of workers; its own verdict must pass."""
    import subprocess
    import sys

    from devstack.stack import ROOT

    report = tmp_path / "chaos.json"
    result = subprocess.run(
        [sys.executable, "-m", "devstack.chaos", "-n", "60", "--seed", "7", "--report",
         str(report), "--run-dir", str(tmp_path / "run"), "--timeout", "240"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    summary = json.loads(report.read_text()) if report.exists() else {}
    assert result.returncode == 0, (summary, result.stdout[-2000:], result.stderr[-2000:])
    assert summary["missing"] == 0 and summary["duplicates"] == 0
    assert summary["uploaded"] == 60
    assert summary["indexed"] + summary["metadata_only"] + sum(
        summary["dead_lettered"].values()) == 60
