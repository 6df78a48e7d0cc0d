"""Zip bomb-safe reading of ZIP-based documents (OOXML, OpenDocument and archives inside them).

Every byte a ZIP-based extractor reads goes through ``SafeZip``:

* the central directory is checked before anything is decompressed: entry count, declared total
  uncompressed size and each entry's declared compression ratio;
* declared sizes are not trusted: bytes are counted while they are decompressed, against one
  budget shared by the document and the archives nested in it, and against the entry's ratio;
* archives nested in the document (an embedded workbook) are looked into down to
  ``Limits.max_zip_depth``; a zip below that depth is refused.

Every limit that trips raises ``HostileFile``; an archive that cannot be read raises
``CorruptFile``.
"""

from __future__ import annotations

import io
import logging
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from extractors.base import Limits
from pipeline.errors import CorruptFile, HostileFile

logger = logging.getLogger(__name__)

#: bytes decompressed per read from a member
CHUNK_BYTES = 64 * 1024
#: entries smaller than this (bytes, declared or read) are not held to the ratio limit
RATIO_FLOOR_BYTES = 1024 * 1024
#: extensions of members that are archives themselves (embedded documents, zips)
NESTED_EXTENSIONS = (
    ".zip", ".docx", ".docm", ".xlsx", ".xlsm", ".pptx", ".pptm", ".odt", ".ods", ".odp", ".jar",
)  # fmt: skip
#: the first bytes of a local file header
ZIP_MAGIC = b"PK\x03\x04"
#: errors of ``zipfile`` and ``zlib`` for archives that are damaged or unsupported
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,  # unsupported compression method
    RuntimeError,  # encrypted member
    ValueError,
)


class Budget:
    """Bytes that may still be decompressed from one file (shared by nested archives)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.remaining = limits.max_unzipped_bytes
        self.entries = 0

    def spend(self, count: int, where: str) -> None:
        """Account for ``count`` more bytes; raises ``HostileFile`` when the budget is spent."""
        self.remaining -= count
        if self.remaining < 0:
            raise HostileFile(
                f"zip bomb: more than {self.limits.max_unzipped_bytes} bytes uncompressed "
                f"(reading {where})",
                max_unzipped_bytes=self.limits.max_unzipped_bytes,
            )


class _CountingReader(io.RawIOBase):
    """A member's decompressed bytes, counted against the budget and the entry's ratio."""

    def __init__(self, raw: IO[bytes], info: zipfile.ZipInfo, budget: Budget) -> None:
        super().__init__()
        self._raw = raw
        self._info = info
        self._budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._raw.read(min(len(view), CHUNK_BYTES))
        except ZIP_ERRORS as exc:
            raise CorruptFile(f"{self._info.filename}: {exc}") from exc
        self.count += len(data)
        self._budget.spend(len(data), self._info.filename)
        _check_ratio(self._info, self.count, self._budget.limits)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _check_ratio(info: zipfile.ZipInfo, uncompressed: int, limits: Limits) -> None:
    """Raise ``HostileFile`` if ``uncompressed`` bytes from ``info`` exceed the ratio limit."""
    if uncompressed <= RATIO_FLOOR_BYTES:
        return
    ratio = uncompressed / max(info.compress_size, 1)
    if ratio > limits.max_zip_ratio:
        raise HostileFile(
            f"zip bomb: {info.filename} expands {ratio:.0f}x, limit {limits.max_zip_ratio:.0f}x",
            member=info.filename,
        )


class SafeZip:
    """A ZIP archive whose reads are bounded (see the module docstring).

    Use ``SafeZip.open(path, limits)`` as a context manager.  Raises ``HostileFile`` for a limit
    and ``CorruptFile`` for an archive ``zipfile`` cannot read.
    """

    def __init__(self, archive: zipfile.ZipFile, budget: Budget, depth: int) -> None:
        self._archive = archive
        self.budget = budget
        self.depth = depth
        self._infos = {info.filename: info for info in archive.infolist()}
        self._check_directory()

    @classmethod
    @contextmanager
    def open(cls, path: Path, limits: Limits) -> Iterator[SafeZip]:
        """Open ``path``, check its central directory and the archives nested in it."""
        try:
            archive = zipfile.ZipFile(path)
        except ZIP_ERRORS as exc:
            raise CorruptFile(f"not a readable zip: {exc}", path=str(path)) from exc
        with archive:
            safe = cls(archive, Budget(limits), depth=0)
            safe.check_nested()
            yield safe

    @property
    def names(self) -> list[str]:
        """Member names in central-directory order."""
        return list(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def _check_directory(self) -> None:
        limits = self.budget.limits
        self.budget.entries += len(self._infos)
        if self.budget.entries > limits.max_zip_entries:
            raise HostileFile(
                f"zip bomb: {self.budget.entries} entries, limit {limits.max_zip_entries}",
                max_zip_entries=limits.max_zip_entries,
            )
        declared = sum(info.file_size for info in self._infos.values())
        if declared > self.budget.remaining:
            raise HostileFile(
                f"zip bomb: {declared} bytes declared uncompressed, "
                f"limit {limits.max_unzipped_bytes}",
                declared=declared,
            )
        for info in self._infos.values():
            _check_ratio(info, info.file_size, limits)

    @contextmanager
    def stream(self, name: str) -> Iterator[IO[bytes]]:
        """A buffered, counted stream of member ``name``; raises ``KeyError`` if it is absent."""
        info = self._infos[name]
        try:
            raw = self._archive.open(info)
        except ZIP_ERRORS as exc:
            raise CorruptFile(f"{name}: {exc}") from exc
        with io.BufferedReader(_CountingReader(raw, info, self.budget), CHUNK_BYTES) as reader:
            yield reader

    def read(self, name: str) -> bytes:
        """All bytes of member ``name`` (counted); raises ``KeyError`` if it is absent."""
        with self.stream(name) as reader:
            return reader.read()

    def read_optional(self, name: str) -> bytes | None:
        """All bytes of member ``name``, or ``None`` if there is no such member."""
        return self.read(name) if name in self._infos else None

    def _head(self, name: str) -> bytes:
        """The first bytes of member ``name`` (uncounted: a few bytes at most)."""
        try:
            with self._archive.open(self._infos[name]) as raw:
                return raw.read(len(ZIP_MAGIC))
        except ZIP_ERRORS:
            return b""

    def check_nested(self) -> None:
        """Open every archive nested in this one down to ``max_zip_depth``.

        Their entries and declared sizes count against the same limits; an archive deeper than
        ``max_zip_depth`` raises ``HostileFile``.  Nested archives that are not zips are ignored.
        """
        for name in self.names:
            if not (name.lower().endswith(NESTED_EXTENSIONS) or self._head(name) == ZIP_MAGIC):
                continue
            data = self.read(name)
            if not zipfile.is_zipfile(io.BytesIO(data)):
                continue
            if self.depth + 1 > self.budget.limits.max_zip_depth:
                raise HostileFile(
                    f"zip bomb: archive nested deeper than {self.budget.limits.max_zip_depth} "
                    f"({name})",
                    member=name,
                )
            try:
                inner = zipfile.ZipFile(io.BytesIO(data))
            except ZIP_ERRORS as exc:
                logger.debug("nested archive %s unreadable: %s", name, exc)
                continue
            with inner:
                SafeZip(inner, self.budget, self.depth + 1).check_nested()
