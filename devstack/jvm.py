"""Finding Java and Maven for the JVM services of the local stack (OpenSearch, ElasticMQ)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def java_executable(missing: type[Exception]) -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH; raises ``missing`` if there is none."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise missing("java not found (set JAVA_HOME or put java 17+ on PATH)")
    return java


def maven_executable(missing: type[Exception]) -> str:
    """``$MVN`` or ``mvn`` on PATH; raises ``missing`` if there is none."""
    mvn = shutil.which(os.environ.get("MVN") or "mvn")
    if not mvn:
        raise missing("mvn not found (install Maven 3.8+ or set MVN)")
    return mvn
