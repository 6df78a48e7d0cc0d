"""Flower and the metrics exporter on the whole stack, started from the Procfile, on the wire.

One stack for the module: the Procfile's processes (bridge, worker, flower, metrics) plus a
second worker, with free ports for Flower and the exporter, basic auth, and a shared
``PROMETHEUS_MULTIPROC_DIR`` so the exporter sums the workers' counters.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.naming import TAG_PID
from broker.sweep import pid_alive
from devstack.ports import free_port
from devstack.stack import ROOT, ProcSpec, Stack, read_procfile
from tests.support import unavailable
from tests.test_transport import WORKER, Aws, wait_until

pytestmark = pytest.mark.stack

AUTH = "ops:s3cret"


class Monitoring:
    """A running stack with Flower and the exporter, and HTTP helpers for both."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.aws = Aws(stack)
        self.flower = f"http://127.0.0.1:{stack.env['FLOWER_PORT']}"
        self.exporter = f"http://127.0.0.1:{stack.env['METRICS_PORT']}"

    def get(self, url: str, auth: str | None = AUTH) -> tuple[int, str]:
        req = urllib.request.Request(url)
        if auth is not None:
            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""
        except OSError:
            return 0, ""

    def api(self, path: str) -> Any:
        import json

        status, body = self.get(self.flower + path)
        return json.loads(body) if status == 200 else None

    def flower_up(self) -> bool:
        return self.get(self.flower + "/healthcheck")[0] == 200

    def restart_flower(self, *, kill: bool = False) -> None:
        command = next(p.command for p in read_procfile(ROOT / "Procfile") if p.name == "flower")
        if kill:
            self.stack.kill("flower")
        else:
            assert self.stack.terminate("flower", timeout=30) == 0
        self.stack.restart("flower", ProcSpec("flower", command))
        wait_until(self.flower_up, what="flower up")

    def dynamic_queue_owners(self) -> dict[str, int]:
        owners = {}
        for kind in ("ev", "pidbox", "reply"):
            for name in self.aws.queues(kind):
                try:
                    url = self.aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                    tags = self.aws.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
                except ClientError:  # deleted since the listing
                    continue
                owners[name] = int(tags.get(TAG_PID, "0"))
        return owners

    def leftovers(self) -> list[str]:
        """Dynamic queues whose owner is dead, and subscriptions to queues that are gone."""
        dead = [n for n, pid in self.dynamic_queue_owners().items() if not pid_alive(pid)]
        queues = set(self.aws.queues())
        return dead + [f"subscription:{q}" for q in self.aws.subscriptions() if q not in queues]


@pytest.fixture(scope="module")
def mon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    run_dir: Path = tmp_path_factory.mktemp("flower")
    (run_dir / "prometheus").mkdir()
    stack = Stack(run_dir=run_dir, extra_procs=[ProcSpec("worker2", WORKER.format(
        name="worker2"))], env={
        "BRIDGE_WAIT_TIME_SECONDS": "1", "FLOWER_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()), "FLOWER_BASIC_AUTH": AUTH,
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus")})
    try:
        stack.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start the local stack: {exc}")
    try:
        running = Monitoring(stack)
        wait_until(running.flower_up, what="flower up")
        yield running
    finally:
        stack.stop()


def test_flower_api_needs_basic_auth(mon: Monitoring) -> None:
    assert mon.get(mon.flower + "/api/workers", auth=None)[0] == 401
    assert mon.get(mon.flower + "/api/workers", auth="ops:wrong")[0] == 401
    assert mon.get(mon.flower + "/api/tasks", auth=None)[0] == 401
    assert mon.get(mon.flower + "/api/workers")[0] == 200


def test_flower_lists_every_worker(mon: Monitoring) -> None:
    def complete() -> Any:
        workers = mon.api("/api/workers?refresh=1") or {}
        return len(workers) == 2 and all("stats" in w and "registered" in w
                                         for w in workers.values()) and workers

    workers = wait_until(complete, what="both workers with stats in /api/workers")
    assert sorted(n.split("@")[0] for n in workers) == ["worker", "worker2"]
    for info in workers.values():
        assert info["stats"]["pool"]["max-concurrency"] >= 1
        assert "tasks.fetch" in info["registered"]


def test_flower_lists_tasks_with_their_states_including_a_failure(mon: Monitoring) -> None:
    # Given a file that arrives and a key that does not exist (dead-lettered: FAILURE)
    mon.aws.s3.put_object(Bucket="filesearch-uploads", Key="flower/ok.txt", Body=b"fine")
    mon.aws.send_missing_object_event("flower/ghost.pdf")

    def states() -> dict[str, set[str]]:
        tasks = mon.api("/api/tasks") or {}
        out: dict[str, set[str]] = {}
        for task in tasks.values():
            out.setdefault(str(task.get("name")), set()).add(str(task.get("state")))
        return out

    seen = wait_until(lambda: (s := states()) and "FAILURE" in s.get("tasks.fetch", set())
                      and "SUCCESS" in s.get("tasks.index", set()) and s,
                      what="a failed fetch and a successful index in /api/tasks")
    assert {"SUCCESS", "FAILURE"} <= seen["tasks.fetch"]
    failed = [t for t in (mon.api("/api/tasks?state=FAILURE") or {}).values()]
    assert any("ObjectGone" in str(t.get("exception")) for t in failed), failed


def test_flower_metrics_carry_task_and_worker_metrics(mon: Monitoring) -> None:
    mon.aws.send_missing_object_event("flower/ghost-metrics.pdf")

    def metrics() -> str:
        status, body = mon.get(mon.flower + "/metrics")
        return body if status == 200 and 'type="task-failed"' in body else ""

    body = wait_until(metrics, what="task-failed in flower /metrics")
    assert re.search(r'flower_events_total\{task="tasks.fetch",type="task-succeeded"', body)
    assert re.search(r'flower_worker_online\{worker="worker2@[^"]+"\} 1\.0', body)
    assert "flower_task_runtime_seconds_count" in body
    # Flower 2.2 serves /metrics (and /healthcheck) without authentication, for scrapers;
    # it listens on 127.0.0.1 only (docs/monitoring.md)
    assert mon.get(mon.flower + "/metrics", auth=None)[0] == 200


def test_exporter_serves_queue_health_and_the_workers_counters(mon: Monitoring) -> None:
    mon.aws.send_missing_object_event("flower/ghost-exporter.pdf")

    def scrape() -> str:
        status, body = mon.get(mon.exporter + "/metrics", auth=None)
        ok = status == 200 and re.search(
            r'filesearch_sqs_oldest_message_age_seconds\{kind="dlq",'
            r'queue="filesearch-dead-letter"\} [0-9.]+', body)
        return body if ok else ""

    body = wait_until(scrape, what="dead-letter age in the exporter")
    deleted = re.search(r'filesearch_sqs_messages_deleted_total\{queue="fetch",'
                        r'source="worker"\} ([0-9.]+)', body)
    assert deleted and float(deleted.group(1)) >= 1, body[-3000:]  # summed over processes
    assert 'filesearch_sqs_messages_visible{kind="dlq",queue="filesearch-dead-letter"}' in body
    assert 'filesearch_sqs_queue_readable{kind="work",queue="filesearch-index"} 1.0' in body


def test_status_table_shows_depth_and_oldest_age(mon: Monitoring) -> None:
    out = subprocess.run([".venv/bin/python", "-m", "pipeline.status"], cwd=ROOT,
                         env=mon.stack.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("filesearch-dead-letter"))
    assert re.search(r"\s\d+(s|m\d\ds)\s+peek\s+<- needs attention", line), out.stdout
    assert "oldest" in out.stdout.splitlines()[0]


def test_flower_restarts_leave_no_queues_or_subscriptions_behind(mon: Monitoring) -> None:
    wait_until(lambda: not mon.leftovers(), what="a clean start")
    baseline = mon.aws.snapshot()
    for _ in range(10):
        mon.restart_flower()  # SIGTERM, as a deploy does

    def settled() -> bool:
        now = mon.aws.snapshot()
        return not mon.leftovers() and all(now[k] == baseline[k]
                                           for k in ("ev", "pidbox", "subscriptions"))

    wait_until(settled, what=f"{baseline} (no leftovers) after restarts")
    assert mon.api("/api/workers?refresh=1")  # the last Flower works


def test_a_killed_flowers_leftovers_are_swept_by_the_next_start(mon: Monitoring) -> None:
    baseline = mon.aws.snapshot()
    flower_pid = mon.stack.procs["flower"].pid
    owned_by_flower = [n for n, pid in mon.dynamic_queue_owners().items() if pid == flower_pid]
    assert owned_by_flower  # its event queue at least

    mon.restart_flower(kill=True)  # kill -9: no exit handler runs
    time.sleep(1)

    # the new Flower's transport sweeps once at start: the dead owner's queues go
    wait_until(lambda: not mon.leftovers() and all(
        mon.aws.snapshot()[k] == baseline[k] for k in ("ev", "subscriptions")),
        what="leftovers swept")
    assert not set(mon.aws.queues()) & set(owned_by_flower)
