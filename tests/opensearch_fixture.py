"""Session-scoped pytest fixture ``opensearch_url``: the base URL of a real OpenSearch node.

Import it from a conftest (or a test module)::

    from tests.opensearch_fixture import opensearch_url  # noqa: F401

* ``OPENSEARCH_URL`` set: that cluster is used as is (nothing is started or stopped).
* Otherwise ``devstack.opensearch`` builds the launcher (Maven, first time only) and starts a
  single node in a temporary directory; it is stopped at the end of the session.
* java/mvn missing or the node fails to start: the requesting tests fail when ``CI=true``,
  and are skipped otherwise.

The node is shared per process: if this fixture is registered more than once (conftest and a
test module), all registrations use one node, stopped when the last of them is torn down.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from devstack.opensearch import OpenSearchError, OpenSearchNode
from tests import support


def unavailable(reason: str) -> NoReturn:
    """Fail on CI (``CI=true``), skip elsewhere."""
    support.unavailable(f"OpenSearch unavailable: {reason}")


class _SharedNode:
    """One node per process, reference-counted across fixture registrations."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.node: OpenSearchNode | None = None
        self.error: str | None = None
        self.users = 0
        self.tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def acquire(self) -> str:
        with self.lock:
            if self.node is None and self.error is None:
                self.tmpdir = tempfile.TemporaryDirectory(prefix="pytest-opensearch-")
                try:
                    self.node = OpenSearchNode.start(Path(self.tmpdir.name) / "home")
                except OpenSearchError as exc:
                    self.error = str(exc)
                    self.tmpdir.cleanup()
                    self.tmpdir = None
            if self.node is None:
                unavailable(self.error or "node did not start")
            self.users += 1
            return self.node.url

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users > 0 or self.node is None:
                return
            node, self.node = self.node, None
            node.stop()
            if self.tmpdir is not None:
                self.tmpdir.cleanup()
                self.tmpdir = None


_SHARED = _SharedNode()


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>``, no trailing slash) of a yellow-or-better node."""
    external = os.environ.get("OPENSEARCH_URL")
    if external:
        yield external.rstrip("/")
        return
    url = _SHARED.acquire()
    try:
        yield url
    finally:
        _SHARED.release()
