"""Shared fixtures: a real local AWS endpoint (moto's server over HTTP) for the session.

A test that needs a service starts it; without it the test skips on a laptop and fails in CI
(``CI=true``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.moto import MotoServer, local_aws_env
from pipeline.provision import provision
from pipeline.settings import Settings, get_settings
from tests.opensearch_fixture import opensearch_url  # noqa: F401  (fixture)
from tests.support import unavailable

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"


def sample_files_dir() -> Path:
    return Path(os.environ.get("SAMPLE_FILES_DIR", ROOT.parent / "shared/corpus/sample-files"))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    try:
        server = MotoServer.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start the local AWS endpoint: {exc}")
    with server:
        yield server


@pytest.fixture(scope="session")
def aws_env(moto_server: MotoServer) -> Iterator[dict[str, str]]:
    """Point this process (and children it starts) at the local endpoint."""
    env = local_aws_env(moto_server.port)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


def isolated_env(aws_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for one test's own buckets, queues and index."""
    tag = uuid.uuid4().hex[:8]
    return {**aws_env, "QUEUE_PREFIX": f"t{tag}-", "UPLOAD_BUCKET": f"up-{tag}",
            "WORK_BUCKET": f"work-{tag}", "SQLITE_PATH": str(tmp_path / "index.sqlite3"),
            **extra}


@pytest.fixture
def isolated(aws_env: dict[str, str], tmp_path: Path) -> Settings:
    """Settings naming resources no other test uses, provisioned."""
    settings = Settings.from_env(isolated_env(aws_env, tmp_path))
    report = provision(settings)
    assert report.ok, report.lines()
    return settings
