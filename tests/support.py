"""Helpers shared by test modules and fixtures."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: CI runs with CI=true: there a service that cannot start is a failure, not a skip
CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str) -> NoReturn:
    """Fail in CI, skip elsewhere."""
    if CI:
        pytest.fail(f"{what} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(what)
