"""The local AWS endpoint: moto's standalone server (S3, SQS, SNS) on 127.0.0.1, never Docker.

    python -m devstack.moto run [--port 4566]                # foreground, until Ctrl-C
    python -m devstack.moto start --port 4566 --pidfile F    # background, waits until it answers
    python -m devstack.moto stop --pidfile F

Production never uses this: it points boto3 at AWS through the standard settings.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.ports import free_port

#: default port of the local endpoint (the one LocalStack made familiar)
DEFAULT_PORT = 4566
#: seconds to wait for the server to answer after start
START_TIMEOUT = 30.0


def endpoint_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def local_aws_env(port: int) -> dict[str, str]:
    """Environment that points boto3 (and so kombu and our code) at the local endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url(port),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "PIPELINE_PROFILE": "local",
    }


def is_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url(port)}/moto-api/", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class MotoServer:
    """A moto server child process; ``stop()`` (or the context manager) ends it."""

    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc

    @property
    def url(self) -> str:
        return endpoint_url(self.port)

    @classmethod
    def start(cls, port: int | None = None, log: Path | None = None) -> MotoServer:
        """Start the server and wait until it answers.

        Raises:
            RuntimeError: the server exited or did not answer within ``START_TIMEOUT``.
        """
        port = port or free_port()
        if is_up(port):
            raise RuntimeError(f"port {port} already serves a moto endpoint; stop it first")
        exe = Path(sys.executable).with_name("moto_server")
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode} (log: {log})")
            if is_up(port):
                return cls(port, proc)
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError(f"moto_server did not answer on port {port} in {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_pidfile(pidfile: Path) -> None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pidfile.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.moto", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "start", "stop"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT",
                                                                       DEFAULT_PORT)))
    parser.add_argument("--pidfile", type=Path, default=Path(".run/moto.pid"))
    parser.add_argument("--log", type=Path, default=Path(".run/moto.log"))
    args = parser.parse_args(argv)
    if args.command == "stop":
        _stop_pidfile(args.pidfile)
        return 0
    args.log.parent.mkdir(parents=True, exist_ok=True)
    server = MotoServer.start(args.port, args.log)
    print(f"local AWS endpoint on {server.url}", flush=True)
    if args.command == "start":
        args.pidfile.parent.mkdir(parents=True, exist_ok=True)
        args.pidfile.write_text(str(server.proc.pid))
        return 0
    try:
        return server.proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
