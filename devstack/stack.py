"""The whole local system: the local AWS endpoint, provisioning, and the Procfile's processes.

    python -m devstack.stack up        # foreground until Ctrl-C (``make up``)

``Stack`` is also used by ``make demo`` and the end-to-end tests.  Everything listens on
127.0.0.1; the environment a running stack uses is written to ``.run/stack.env`` so that
``make upload`` / ``make status`` / ``make search`` in another terminal reach the same stack.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devstack.moto import DEFAULT_PORT, MotoServer, is_up, local_aws_env
from devstack.ports import free_port, port_free

ROOT = Path(__file__).resolve().parent.parent
#: where the stack keeps its state, logs and index
RUN_DIR = ROOT / ".run"
ENV_FILE = RUN_DIR / "stack.env"
#: seconds to wait for a worker to report ready
READY_TIMEOUT = 60.0
#: seconds a process gets to finish after SIGTERM before SIGKILL
STOP_GRACE = 20.0


@dataclass(frozen=True)
class ProcSpec:
    name: str
    command: str


def start_opensearch(run_dir: Path, logs: Path, fresh: bool = False) -> Any:
    """A local OpenSearch node keeping its data in ``run_dir/opensearch`` (built on first use)."""


    from devstack.opensearch import OpenSearchNode

    home = run_dir / "opensearch"
    if fresh:
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    return OpenSearchNode.start(home, log=logs / "opensearch.log")


def read_procfile(path: Path) -> list[ProcSpec]:
    specs = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, command = line.split(":", 1)
            specs.append(ProcSpec(name.strip(), command.strip()))
    return specs


def write_env_file(env: Mapping[str, str], path: Path = ENV_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    env: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                key, value = line[len("export "):].split("=", 1)
                env[key] = shlex.split(value)[0] if value else ""
    return env


class Stack:
    """Start with ``start()``, end with ``stop()`` (or use it as a context manager)."""

    def __init__(self, *, run_dir: Path = RUN_DIR, procfile: Path = ROOT / "Procfile",
                 only: Iterable[str] | None = None, env: Mapping[str, str] | None = None,
                 moto_port: int | None = None, echo: bool = False, fresh_index: bool = True,
                 extra_procs: Iterable[ProcSpec] = ()):
        self.run_dir = run_dir
        self.procfile = procfile
        self.only = set(only) if only else None
        self.extra_env = dict(env or {})
        self.moto_port = moto_port
        self.echo = echo
        self.fresh_index = fresh_index
        self.extra_procs = list(extra_procs)
        self.moto: MotoServer | None = None
        self.opensearch: Any = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, ProcSpec] = {}
        self._log_start: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self._pumps: list[threading.Thread] = []

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def start(self) -> Stack:
        self.logs.mkdir(parents=True, exist_ok=True)
        port = self.moto_port or int(os.environ.get("MOTO_PORT", DEFAULT_PORT))
        if is_up(port):
            port = free_port()  # another stack (or a test) holds the usual port
        self.moto = MotoServer.start(port, self.logs / "moto.log")
        self.env = {**os.environ, **local_aws_env(port),
                    "SQLITE_PATH": str(self.run_dir / "index.sqlite3"), **self.extra_env}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        for var, default in (("FLOWER_PORT", 5555), ("METRICS_PORT", 9808)):
            if var not in self.extra_env and var not in os.environ:
                # the usual port if free, else any: stacks (tests, a demo) may run side by side
                self.env[var] = str(default if port_free(default) else free_port())
        multiproc = self.run_dir / "prometheus"
        shutil.rmtree(multiproc, ignore_errors=True)
        multiproc.mkdir(parents=True)
        self.env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(multiproc))
        if self.fresh_index:
            for suffix in ("", "-wal", "-shm"):
                Path(self.env["SQLITE_PATH"] + suffix).unlink(missing_ok=True)
        if self.env.get("INDEX_BACKEND") == "opensearch" and not self.env.get("OPENSEARCH_URL"):
            self.opensearch = start_opensearch(self.run_dir, self.logs, fresh=self.fresh_index)
            self.env["OPENSEARCH_URL"] = self.opensearch.url
        write_env_file({k: v for k, v in self.env.items()
                        if k.startswith(("AWS_", "PIPELINE_", "SQLITE_", "INDEX_", "OPENSEARCH_",
                                         "FLOWER_", "METRICS_", "PROMETHEUS_"))
                        or k in self.extra_env}, self.run_dir / "stack.env")
        try:
            self._run([sys.executable, "-m", "pipeline.provision"], "provision")
            for spec in [*read_procfile(self.procfile), *self.extra_procs]:
                if self.only is None or spec.name in self.only:
                    self._spawn(spec)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, argv: list[str], name: str) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:
            result = subprocess.run(argv, cwd=ROOT, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} failed ({result.returncode}):\n{tail}")

    def _spawn(self, spec: ProcSpec) -> None:
        self.specs[spec.name] = spec
        log_path = self.logs / f"{spec.name}.log"
        # readiness is read from what this start writes, not from an earlier run's lines
        self._log_start[spec.name] = log_path.stat().st_size if log_path.exists() else 0
        proc = subprocess.Popen(["/bin/sh", "-c", f"exec {spec.command}"], cwd=ROOT,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[spec.name] = proc
        pump = threading.Thread(target=self._pump, args=(spec.name, proc.stdout, log_path),
                                daemon=True)
        pump.start()
        self._pumps.append(pump)

    def _pump(self, name: str, stream: IO[bytes] | None, log_path: Path) -> None:
        if stream is None:
            return
        with open(log_path, "ab") as log:
            for line in iter(stream.readline, b""):
                log.write(line)
                log.flush()
                if self.echo:
                    sys.stdout.write(f"{name:>8} | {line.decode(errors='replace')}")
                    sys.stdout.flush()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until every worker process logged that it is ready."""
        workers = [n for n in self.procs if n.startswith("worker")]
        deadline = time.monotonic() + timeout
        pending = set(workers)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with {self.procs[name].returncode}; "
                                       f"see {self.logs / (name + '.log')}")
                log = self.logs / f"{name}.log"
                if log.exists():
                    with open(log, "rb") as f:
                        f.seek(self._log_start.get(name, 0))
                        if b" ready." in f.read():
                            pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"not ready after {timeout}s: {sorted(pending)}")

    def terminate(self, name: str, timeout: float = STOP_GRACE) -> int:
        """SIGTERM to the process itself (a warm shutdown, as a deploy does); its exit code."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def kill(self, name: str) -> None:
        """``kill -9`` a process and every child it has (a crashed machine, for tests)."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self, name: str, spec: ProcSpec | None = None) -> None:
        """Start a process again (after ``kill`` or ``terminate``), optionally as ``spec``."""
        self._spawn(spec or self.specs[name])

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self.opensearch is not None:
            self.opensearch.stop()
            self.opensearch = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up",))
    parser.parse_args(argv)
    stack = Stack(echo=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        assert stack.moto is not None
        print(f"\nstack up: AWS endpoint {stack.moto.url}, index {stack.env['SQLITE_PATH']}\n"
              "  upload:  make upload FILES=dir      status: make status\n"
              "  search:  make search Q='...'        stop:   Ctrl-C\n", flush=True)
        while not stopping.is_set():
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", flush=True)
                    stopping.set()
            stopping.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
