"""A real single-node OpenSearch 2.19 for dev runs and tests, built from Maven Central jars.

No Docker and no OpenSearch download: ``devstack/opensearch-node`` is a tiny Maven project whose
launcher (``dev.filesearch.OpenSearchLauncher``) starts an OpenSearch ``Node`` with the Netty4,
common-analysis (cjk, path_hierarchy, ...), Painless, reindex and mapper-extras plugins.
Needs Java 17+ and Maven; the first build downloads the jars into ~/.m2, later ones reuse them.

    python -m devstack.opensearch build [--force]
    python -m devstack.opensearch run --home .run/opensearch --port 9200      # foreground
    python -m devstack.opensearch start --home .run/opensearch --port 9200 --pidfile F
    python -m devstack.opensearch stop --pidfile F

Environment: ``JAVA_HOME`` (else ``java`` on PATH), ``MVN`` (else ``mvn`` on PATH),
``OPENSEARCH_JAVA_OPTS`` (extra JVM options, appended after the defaults).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Self

from devstack import jvm
from devstack.ports import free_port, port_free

NODE_PROJECT = Path(__file__).resolve().parent / "opensearch-node"
POM = NODE_PROJECT / "pom.xml"
SOURCES = NODE_PROJECT / "src"
TARGET = NODE_PROJECT / "target"
LAUNCHER_JAR = TARGET / "opensearch-node.jar"
LIB_DIR = TARGET / "lib"
#: written after a successful build; build() compares the sources against its mtime
BUILD_STAMP = TARGET / ".build-stamp"
MAIN_CLASS = "dev.filesearch.OpenSearchLauncher"
READY_MARKER = "OPENSEARCH_READY"

DEFAULT_PORT = 9200
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
BUILD_TIMEOUT = 1800.0
JVM_OPTS = (
    "-Xms512m",
    "-Xmx512m",
    "-Dopensearch.set.netty.runtime.available.processors=false",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
)
#: jars whose absence means the build output is unusable
_REQUIRED_JARS = (
    "opensearch-2.*.jar",
    "transport-netty4-client-*.jar",
    "analysis-common-*.jar",
    "lang-painless-*.jar",
    "log4j-core-*.jar",
)


class OpenSearchError(RuntimeError):
    """The node could not be built, started or stopped."""


class ToolMissingError(OpenSearchError):
    """java or mvn is not installed (callers may treat this as "skip")."""


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def java_executable() -> str:
    return jvm.java_executable(ToolMissingError)


def maven_executable() -> str:
    return jvm.maven_executable(ToolMissingError)


def _sources() -> list[Path]:
    return [POM, *sorted(SOURCES.rglob("*.java"))]


def needs_build() -> bool:
    """True if the launcher jar or its classpath is missing or older than pom.xml/sources."""
    if not (LAUNCHER_JAR.is_file() and BUILD_STAMP.is_file() and LIB_DIR.is_dir()):
        return True
    if any(not any(LIB_DIR.glob(pattern)) for pattern in _REQUIRED_JARS):
        return True
    built = BUILD_STAMP.stat().st_mtime
    return any(src.stat().st_mtime > built for src in _sources())


def build(force: bool = False) -> Path:
    """Build the launcher (only when needed) and return the ``target`` directory.

    ``target/opensearch-node.jar`` plus ``target/lib/*.jar`` form the classpath.

    Raises:
        ToolMissingError: Maven is not installed.
        OpenSearchError: Maven failed (the message ends with the tail of its output).
    """
    if not force and not needs_build():
        return TARGET
    TARGET.mkdir(parents=True, exist_ok=True)
    # Serialise concurrent builds (parallel test workers, make -j).
    with open(TARGET / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and not needs_build():
            return TARGET
        mvn = maven_executable()
        # copy-dependencies never deletes jars: clear lib/ so a version bump leaves no stale ones.
        shutil.rmtree(LIB_DIR, ignore_errors=True)
        BUILD_STAMP.unlink(missing_ok=True)
        started = time.time()
        cmd = [mvn, "-B", "-q", "-f", str(POM), "package"]
        try:
            result = subprocess.run(
                cmd,
                cwd=NODE_PROJECT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OpenSearchError(f"maven build timed out after {BUILD_TIMEOUT:.0f}s") from exc
        except OSError as exc:
            raise ToolMissingError(f"cannot run maven ({mvn}): {exc}") from exc
        if result.returncode != 0 or not LAUNCHER_JAR.is_file():
            tail = "\n".join(result.stdout.splitlines()[-40:])
            raise OpenSearchError(
                f"maven build failed (exit {result.returncode}): {shlex.join(cmd)}\n{tail}"
            )
        BUILD_STAMP.write_text(json.dumps({"seconds": round(time.time() - started, 1)}) + "\n")
        if needs_build():
            raise OpenSearchError(f"maven succeeded but {LIB_DIR} lacks the OpenSearch jars")
    return TARGET


def classpath() -> str:
    return os.pathsep.join([str(LAUNCHER_JAR), str(LIB_DIR / "*")])


def cluster_health(url: str, timeout: float = 2.0) -> dict[str, object] | None:
    """``/_cluster/health`` once the cluster is at least yellow, else ``None``."""
    query = f"wait_for_status=yellow&timeout={max(int(timeout) - 1, 0)}s"
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health?{query}", timeout=timeout) as resp:
            if resp.status != 200:
                return None
            health: dict[str, object] = json.load(resp)
    except (OSError, ValueError):
        return None
    return health if health.get("status") in ("yellow", "green") else None


_LIVE: set[OpenSearchNode] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_live_nodes() -> None:
    with _LIVE_LOCK:
        nodes = list(_LIVE)
    for node in nodes:
        node.stop()


class OpenSearchNode:
    """A running OpenSearch child process; ``stop()`` (or the context manager) ends it."""

    def __init__(
        self,
        home: Path,
        http_port: int,
        transport_port: int,
        proc: subprocess.Popen[bytes],
        log: Path | None,
    ) -> None:
        self.home = home
        self.http_port = http_port
        self.transport_port = transport_port
        self.proc = proc
        self.log = log
        #: set by stop(): True if SIGTERM was not enough and the JVM had to be killed
        self.killed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def cluster_log(self) -> Path:
        """The node's own log file (written by log4j)."""
        return self.home / "logs" / "filesearch-dev.log"

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log if self.log else self.cluster_log, lines)

    @classmethod
    def start(
        cls,
        home: Path,
        http_port: int | None = None,
        timeout: float = START_TIMEOUT,
        *,
        transport_port: int | None = None,
        log: Path | None = None,
        inherit_output: bool = False,
        detach: bool = False,
    ) -> OpenSearchNode:
        """Build if needed, start a node under ``home`` and wait until it is yellow.

        Args:
            home: node home; ``config/``, ``data/``, ``logs/`` are created below it.
            http_port: HTTP port; a free one when ``None``.
            timeout: seconds to wait for ``/_cluster/health?wait_for_status=yellow``.
            transport_port: transport port; a free one when ``None``.
            log: file receiving the JVM's stdout/stderr (default ``home/logs/launcher.log``).
            inherit_output: write JVM output to this process's stdout/stderr instead.
            detach: keep the node running when this Python process exits (for ``start``);
                otherwise the JVM exits with its parent and an atexit hook stops it.

        Raises:
            ToolMissingError: java or mvn is missing.
            OpenSearchError: the build failed, the port is taken, the JVM exited or the
                node was not healthy in time (the message ends with the log tail).
        """
        build()
        java = java_executable()
        home = Path(home).resolve()
        http_port = http_port or free_port()
        transport_port = transport_port or free_port()
        if not port_free(http_port):
            raise OpenSearchError(f"port {http_port} on 127.0.0.1 is already in use")
        for sub in ("config", "data", "logs", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        cmd = [
            java,
            *JVM_OPTS,
            f"-Djava.io.tmpdir={home / 'tmp'}",
            *shlex.split(os.environ.get("OPENSEARCH_JAVA_OPTS", "")),
            "-cp",
            classpath(),
            MAIN_CLASS,
            "--home",
            str(home),
            "--http-port",
            str(http_port),
            "--transport-port",
            str(transport_port),
        ]
        if not detach:
            cmd += ["--parent-pid", str(os.getpid())]
        if inherit_output:
            log = None
            out = None
        else:
            log = log or home / "logs" / "launcher.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            out = open(log, "wb")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolMissingError(f"cannot run java ({java}): {exc}") from exc
        finally:
            if out is not None:
                out.close()
        node = cls(home, http_port, transport_port, proc, log)
        if not detach:
            with _LIVE_LOCK:
                _LIVE.add(node)
        try:
            node.wait_until_healthy(timeout)
        except BaseException:
            node.stop()
            raise
        return node

    def wait_until_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise OpenSearchError(
                    f"OpenSearch exited with code {code} during start (home {self.home}); "
                    f"log tail:\n{self.log_tail()}"
                )
            if cluster_health(self.url) is not None:
                return
            if time.monotonic() > deadline:
                raise OpenSearchError(
                    f"OpenSearch did not become healthy on {self.url} within {timeout:.0f}s; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the node's process group, wait, then SIGKILL. Returns the exit code."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OpenSearchNode(url={self.url!r}, pid={self.proc.pid}, home={str(self.home)!r})"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid`` (the JVM runs in its own session)."""
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(pid, sig)
        except PermissionError:
            os.kill(pid, sig)


def _is_our_jvm(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc (macOS): fall back to "the process exists"
        return _alive(pid)
    return MAIN_CLASS.encode() in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pidfile(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_pidfile(pidfile: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the node recorded in ``pidfile``; False if none was running."""
    pid = _read_pidfile(pidfile)
    if pid is None or not _is_our_jvm(pid):
        pidfile.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True


class _SignalStop:
    """SIGTERM/SIGINT handling for ``run``: abort a start in progress, later request a stop."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.started = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested.set()
        if not self.started:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _terminate_on_signals() -> Iterator[_SignalStop]:
    handler = _SignalStop()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.opensearch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the launcher (skipped when up to date)")
    p_build.add_argument("--force", action="store_true", help="run maven even if up to date")
    for name in ("run", "start"):
        p = sub.add_parser(name, help=f"{name} a node")
        p.add_argument("--home", type=Path, default=Path(".run/opensearch"))
        p.add_argument(
            "--port", type=int, default=int(os.environ.get("OPENSEARCH_PORT", DEFAULT_PORT))
        )
        p.add_argument("--transport-port", type=int, default=None)
        p.add_argument("--timeout", type=float, default=START_TIMEOUT)
        if name == "start":
            p.add_argument("--pidfile", type=Path, default=Path(".run/opensearch.pid"))
    p_stop = sub.add_parser("stop", help="stop a node started with `start`")
    p_stop.add_argument("--pidfile", type=Path, default=Path(".run/opensearch.pid"))
    p_stop.add_argument("--timeout", type=float, default=STOP_TIMEOUT)
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            started = time.monotonic()
            target = build(force=args.force)
            print(f"launcher ready in {target} ({time.monotonic() - started:.1f}s)", flush=True)
            return 0
        if args.command == "stop":
            if stop_pidfile(args.pidfile, args.timeout):
                print(f"stopped OpenSearch ({args.pidfile})", flush=True)
            else:
                print(f"OpenSearch was not running ({args.pidfile})", flush=True)
            return 0
        if args.command == "start":
            pid = _read_pidfile(args.pidfile)
            if pid is not None and _is_our_jvm(pid):
                print(f"OpenSearch already running (pid {pid}, {args.pidfile})", flush=True)
                return 0
            node = OpenSearchNode.start(
                args.home, args.port, args.timeout, transport_port=args.transport_port, detach=True
            )
            args.pidfile.parent.mkdir(parents=True, exist_ok=True)
            args.pidfile.write_text(f"{node.pid}\n")
            print(f"OpenSearch on {node.url} (pid {node.pid}, log {node.log})", flush=True)
            return 0
        # run: foreground until SIGTERM / Ctrl-C
        with _terminate_on_signals() as stop:
            node = OpenSearchNode.start(
                args.home,
                args.port,
                args.timeout,
                transport_port=args.transport_port,
                inherit_output=True,
            )
            stop.started = True
            print(f"OpenSearch on {node.url} (pid {node.pid})", flush=True)
            try:
                while not stop.requested.wait(0.5):
                    if node.proc.poll() is not None:
                        print(f"OpenSearch exited with {node.proc.returncode}", file=sys.stderr)
                        return node.proc.returncode or 1
            finally:
                node.stop()
        return 0
    except OpenSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
