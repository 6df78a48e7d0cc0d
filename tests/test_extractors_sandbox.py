"""The sandbox: extraction in a forked child under memory, CPU and wall-time limits.

Misbehaving extractors are registered in a fresh ``Registry`` that replaces the default one for
the test (the forked child inherits the replacement).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import extractors
from extractors import INDEXED, Extraction, Limits
from extractors.registry import Registry
from extractors.sandbox import extract_isolated
from pipeline.errors import CorruptFile, ExtractionTimeout, HostileFile, TooManyPages
from tests import fixtures_files as build

MEDIA_TYPE = "application/x-test"


def _hog_memory(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB, far over the cap
    return Extraction(content_type=content_type, text=str(len(hoard)))


def _spin(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    while True:
        pass


def _sleep(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    time.sleep(60)
    return Extraction(content_type=content_type)


def _segfault(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    os.kill(os.getpid(), signal.SIGSEGV)
    return Extraction(content_type=content_type)


def _too_many_pages(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    raise TooManyPages("12 pages, limit 3", pages=12)


def _buggy(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    raise KeyError("a bug")


def _big_text(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    return Extraction(content_type=content_type, text="日本語です" * 1_200_000, metadata={"k": [1]})


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = Registry()
    for name, extractor in (("hog", _hog_memory), ("spin", _spin), ("sleep", _sleep),
                            ("segv", _segfault), ("pages", _too_many_pages),
                            ("bug", _buggy), ("big", _big_text)):  # fmt: skip
        registry.register(f"{MEDIA_TYPE}-{name}", extractor)
    monkeypatch.setattr(extractors, "lookup", registry.lookup)
    path = tmp_path / "sample.bin"
    path.write_bytes(b"anything")
    return path


def _isolated(path: Path, kind: str, limits: Limits) -> Extraction:
    return extract_isolated(
        path, filename=path.name, limits=limits, content_type=f"{MEDIA_TYPE}-{kind}"
    )


def test_memory_hog_is_hostile_and_the_parent_survives(sample: Path) -> None:
    started = time.monotonic()
    with pytest.raises(HostileFile, match="resource limit"):
        _isolated(sample, "hog", Limits(max_memory_bytes=1024**3, max_seconds=30))
    assert time.monotonic() - started < 30
    assert bytearray(16 * 1024 * 1024)  # this process can still allocate


def test_cpu_limit_kills_a_spinning_child(sample: Path) -> None:
    with pytest.raises(HostileFile, match=r"SIGXCPU|SIGKILL"):
        _isolated(sample, "spin", Limits(max_cpu_seconds=1, max_seconds=20))


def test_wall_time_limit_kills_a_sleeping_child(sample: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ExtractionTimeout):
        _isolated(sample, "sleep", Limits(max_seconds=1))
    assert time.monotonic() - started < 10


def test_crashing_child_is_hostile(sample: Path) -> None:
    with pytest.raises(HostileFile, match="SIGSEGV"):
        _isolated(sample, "segv", Limits())


def test_content_error_keeps_its_class_and_message(sample: Path) -> None:
    with pytest.raises(TooManyPages, match="12 pages, limit 3"):
        _isolated(sample, "pages", Limits())
    with pytest.raises(CorruptFile, match="KeyError"):
        _isolated(sample, "bug", Limits())


def test_megabytes_of_text_come_back_through_the_pipe(sample: Path) -> None:
    result = _isolated(sample, "big", Limits(max_chars=10_000_000))
    assert (len(result.text), result.metadata) == (6_000_000, {"k": [1], "language": "ja"})


def test_real_file_isolated_matches_in_process(tmp_path: Path) -> None:
    path = build.docx(tmp_path / "report.docx")
    isolated = extract_isolated(path, filename=path.name, limits=Limits())
    direct = extractors.extract_file(path, filename=path.name, limits=Limits())
    assert isolated == direct and isolated.outcome == INDEXED


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        extract_isolated(tmp_path / "gone.pdf", filename="gone.pdf", limits=Limits())
