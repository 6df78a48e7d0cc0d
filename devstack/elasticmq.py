"""ElasticMQ: an SQS-compatible server on the JVM, for load tests (moto's SQS slows with depth).

No Docker and no download besides Maven Central: ``devstack/elasticmq/pom.xml`` copies
``org.elasticmq:elasticmq-server_2.13`` and its dependencies into ``target/lib``; the server
runs as ``java -Dconfig.file=<conf> -cp 'target/lib/*' org.elasticmq.server.Main``.  It speaks
the SQS JSON protocol current boto3 uses (and the query protocol); queues are created over the
API by ``pipeline.provision`` (CreateQueue with ``RedrivePolicy`` works).  Only SQS: S3 stays on
moto, so S3 event notifications cannot reach it -- a load generator sends the events itself.

    python -m devstack.elasticmq build [--force]
    python -m devstack.elasticmq run [--port 9324]          # foreground, until Ctrl-C

Point the pipeline at it with ``AWS_ENDPOINT_URL_SQS=http://127.0.0.1:<port>`` (boto3's
service-specific variable wins over ``AWS_ENDPOINT_URL``, which keeps S3 on moto).
Environment: ``JAVA_HOME`` (else ``java`` on PATH), ``MVN`` (else ``mvn`` on PATH),
``ELASTICMQ_JAVA_OPTS`` (extra JVM options).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devstack import jvm
from devstack.ports import free_port

PROJECT = Path(__file__).resolve().parent / "elasticmq"
POM = PROJECT / "pom.xml"
TARGET = PROJECT / "target"
LIB_DIR = TARGET / "lib"
#: written after a successful build; a newer pom.xml means "build again"
BUILD_STAMP = TARGET / ".build-stamp"
MAIN_CLASS = "org.elasticmq.server.Main"
DEFAULT_PORT = 9324
#: seconds to wait for the server to answer after start
START_TIMEOUT = 60.0
#: seconds after SIGTERM before SIGKILL
STOP_TIMEOUT = 15.0
#: seconds a Maven build may take (the first one downloads ~40 jars)
BUILD_TIMEOUT = 900.0
#: region and account in the queue ARNs; an account moto does not use, so no ARN can collide
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
JVM_OPTS = ("-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Dfile.encoding=UTF-8")
_CONFIG = """\
include classpath("application.conf")
node-address {{ protocol = "http", host = "127.0.0.1", port = {port}, context-path = "" }}
rest-sqs {{ enabled = true, bind-port = {port}, bind-hostname = "127.0.0.1", sqs-limits = strict }}
rest-stats {{ enabled = false }}
aws {{ region = "{region}", accountId = "{account}" }}
"""


class ElasticMQError(RuntimeError):
    """The server could not be built, started or stopped."""


class ToolMissingError(ElasticMQError):
    """java or mvn is not installed (callers may treat this as "skip")."""


def java_executable() -> str:
    return jvm.java_executable(ToolMissingError)


def maven_executable() -> str:
    return jvm.maven_executable(ToolMissingError)


def needs_build() -> bool:
    if not (BUILD_STAMP.is_file() and any(LIB_DIR.glob("elasticmq-server_*.jar"))):
        return True
    return POM.stat().st_mtime > BUILD_STAMP.stat().st_mtime


def build(force: bool = False) -> Path:
    """Copy the server's jars into ``target/lib`` (only when needed); returns that folder.

    Raises:
        ToolMissingError: Maven is not installed.
        ElasticMQError: Maven failed (the message ends with the tail of its output).
    """
    if not force and not needs_build():
        return LIB_DIR
    TARGET.mkdir(parents=True, exist_ok=True)
    with open(TARGET / ".build.lock", "w") as lock:  # parallel test workers build once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and not needs_build():
            return LIB_DIR
        cmd = [maven_executable(), "-B", "-q", "-f", str(POM), "package"]
        shutil.rmtree(LIB_DIR, ignore_errors=True)  # no stale jars after a version bump
        started = time.time()
        try:
            result = subprocess.run(cmd, cwd=PROJECT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT,
                                    check=False)
        except subprocess.TimeoutExpired as exc:
            raise ElasticMQError(f"maven build timed out after {BUILD_TIMEOUT:.0f}s") from exc
        except OSError as exc:
            raise ToolMissingError(f"cannot run maven: {exc}") from exc
        if result.returncode != 0 or not any(LIB_DIR.glob("elasticmq-server_*.jar")):
            tail = "\n".join(result.stdout.splitlines()[-40:])
            raise ElasticMQError(f"maven build failed (exit {result.returncode}): "
                                 f"{shlex.join(cmd)}\n{tail}")
        BUILD_STAMP.write_text(json.dumps({"seconds": round(time.time() - started, 1)}) + "\n")
    return LIB_DIR


def version() -> str:
    """The ElasticMQ version ``pom.xml`` pins."""
    match = re.search(r"<elasticmq.version>([^<]+)<", POM.read_text())
    return match.group(1) if match else "unknown"


def config_text(port: int) -> str:
    """The server's HOCON configuration: loopback only, queue URLs naming ``port``."""
    return _CONFIG.format(port=port, region=REGION, account=ACCOUNT_ID)


def answers(url: str, timeout: float = 1.0) -> bool:
    """True once the endpoint answers an SQS ``ListQueues`` (JSON protocol)."""
    request = urllib.request.Request(
        url + "/", data=b"{}", method="POST",
        headers={"Content-Type": "application/x-amz-json-1.0",
                 "X-Amz-Target": "AmazonSQS.ListQueues"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class ElasticMQServer:
    """A running server (a JVM in its own session); ``stop()`` or the context manager ends it."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes], home: Path) -> None:
        self.port = port
        self.proc = proc
        self.home = home

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def env(self) -> dict[str, str]:
        """Environment that sends SQS (only) to this server."""
        return {"AWS_ENDPOINT_URL_SQS": self.url}

    @classmethod
    def start(cls, port: int | None = None, *, home: Path | None = None, log: Path | None = None,
              timeout: float = START_TIMEOUT) -> ElasticMQServer:
        """Build if needed, start the server and wait until it answers.

        Args:
            port: port on 127.0.0.1 (a free one when ``None``).
            home: folder for the config file (a temporary one when ``None``).
            log: file receiving the JVM's output (default ``home/elasticmq.log``).

        Raises:
            ToolMissingError: java or mvn is missing.
            ElasticMQError: the build failed, the JVM exited or did not answer in time.
        """
        build()
        java = java_executable()
        port = port or free_port()
        home = home or Path(tempfile.mkdtemp(prefix="elasticmq-"))
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "elasticmq.conf"
        conf.write_text(config_text(port))
        log = log or home / "elasticmq.log"
        cmd = [java, *JVM_OPTS, *shlex.split(os.environ.get("ELASTICMQ_JAVA_OPTS", "")),
               f"-Dconfig.file={conf}", "-cp", str(LIB_DIR / "*"), MAIN_CLASS]
        with open(log, "ab") as out:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise ToolMissingError(f"cannot run java ({java}): {exc}") from exc
        server = cls(port, proc, home)
        deadline = time.monotonic() + timeout
        while not answers(server.url):
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise ElasticMQError(f"ElasticMQ did not answer on {server.url} "
                                     f"(exit {proc.returncode}); log tail:\n{tail}")
            time.sleep(0.2)
        return server

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> ElasticMQServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.elasticmq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="copy the jars from Maven Central (when needed)")
    p_build.add_argument("--force", action="store_true")
    p_run = sub.add_parser("run", help="run a server in the foreground")
    p_run.add_argument("--port", type=int, default=DEFAULT_PORT)
    p_run.add_argument("--home", type=Path, default=Path(".run/elasticmq"))
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(f"jars in {build(force=args.force)}", flush=True)
            return 0
        with ElasticMQServer.start(args.port, home=args.home) as server:
            print(f"ElasticMQ on {server.url} (export AWS_ENDPOINT_URL_SQS={server.url}); "
                  "Ctrl-C stops", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                server.proc.wait()
    except ElasticMQError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
