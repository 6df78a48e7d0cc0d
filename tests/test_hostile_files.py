"""The hostile set: each file ends in its ``ContentError`` (or a metadata-only outcome) within the
time cap, in process and in the sandbox, and the calling process keeps working."""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest

from extractors import INDEXED, Extraction, Limits, extract_file
from extractors.safezip import SafeZip
from extractors.sandbox import extract_isolated
from pipeline.errors import (
    ContentError,
    CorruptFile,
    EmptyFile,
    FileTooLarge,
    HostileFile,
)
from tests import fixtures_files as build

#: seconds any hostile file may take, in process or isolated
TIME_CAP = 20.0
LIMITS = Limits(max_seconds=TIME_CAP)


def _both_ways(path: Path, error: type[ContentError] | tuple[type[ContentError], ...],
               limits: Limits = LIMITS, match: str | None = None) -> None:  # fmt: skip
    """``path`` raises ``error`` in process and isolated, each within ``TIME_CAP``."""
    for run in (extract_file, extract_isolated):
        started = time.monotonic()
        with pytest.raises(error, match=match):
            run(path, filename=path.name, limits=limits)
        assert time.monotonic() - started < TIME_CAP
    # and this process still works
    assert extract_file(build.png(path.parent / "after.png"), filename="after.png",
                        limits=LIMITS).outcome == INDEXED  # fmt: skip


def test_zip_bomb_disguised_as_docx(tmp_path: Path) -> None:
    # Given a real Word package padded with 600 MB of zeros (~600 KB on disk)
    path = build.zip_bomb_docx(tmp_path / "report.docx")
    assert path.stat().st_size < 2 * 1024 * 1024
    _both_ways(path, HostileFile, match="zip bomb")


def test_zip_bomb_by_compression_ratio(tmp_path: Path) -> None:
    path = build.zip_bomb_docx(tmp_path / "ratio.docx", entries=2)
    _both_ways(path, HostileFile, match="expands")


def test_nested_zip_bomb_42_style(tmp_path: Path) -> None:
    _both_ways(build.nested_zip_bomb_docx(tmp_path / "42.docx"), HostileFile, match="nested")


def test_too_many_zip_entries(tmp_path: Path) -> None:
    members = {f"word/media/{n}.txt": b"x" for n in range(50)}
    base = build.docx(tmp_path / "base.docx")
    path = build.replace_members(base, tmp_path / "many.docx", members)
    _both_ways(path, HostileFile, Limits(max_zip_entries=40), match="entries")


def test_bytes_are_counted_while_reading(tmp_path: Path) -> None:
    # Given an archive that passes the central-directory checks
    path = build.zip_of(tmp_path / "a.zip", {"big.xml": b"<a>" + b"x" * 200_000 + b"</a>"})
    with SafeZip.open(path, Limits()) as archive:
        # When less budget is left than the member really holds, then reading it is refused
        archive.budget.remaining = 100_000
        with pytest.raises(HostileFile, match="uncompressed"):
            archive.read("big.xml")


def test_lying_declared_size_is_not_trusted(tmp_path: Path) -> None:
    # Given word/document.xml declaring 1000 bytes that really inflate to 5 MB
    base = build.docx(tmp_path / "base.docx")
    body = b"<w:p/>" * (5 * 1024 * 1024 // 6)
    data = bytearray(build.replace_members(base, tmp_path / "x.docx",
                                           {"word/document.xml": body}).read_bytes())  # fmt: skip
    with zipfile.ZipFile(tmp_path / "x.docx") as archive:
        info = archive.getinfo("word/document.xml")
    _patch_sizes(data, info, 1000)
    path = tmp_path / "lying.docx"
    path.write_bytes(bytes(data))
    _both_ways(path, (CorruptFile, HostileFile))


def _patch_sizes(data: bytearray, info: zipfile.ZipInfo, size: int) -> None:
    """Overwrite the uncompressed size in the member's local and central headers."""
    struct.pack_into("<I", data, info.header_offset + 22, size)
    central = data.find(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6])
    name = info.filename.encode()
    while central != -1 and data[central + 46 : central + 46 + len(name)] != name:
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, size)


@pytest.mark.parametrize(
    ("builder", "part"),
    [(build.xlsx, "xl/sharedStrings.xml"), (build.odt, "content.xml"),
     (build.docx, "docProps/core.xml")],
    ids=["xlsx-shared-strings", "odt-content", "docx-core-properties"],
)  # fmt: skip
def test_billion_laughs(tmp_path: Path, builder: Callable[[Path], Path], part: str) -> None:
    source = builder(tmp_path / f"source{builder.__name__}")
    source = source.rename(source.with_suffix(f".{builder.__name__}"))
    path = build.replace_members(source, tmp_path / f"laughs.{builder.__name__}",
                                 {part: build.BILLION_LAUGHS})  # fmt: skip
    _both_ways(path, HostileFile, match="forbidden XML")


def test_truncated_pdf(tmp_path: Path) -> None:
    whole = build.scanned_pdf(tmp_path / "whole.pdf", [["text"]]).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 3])
    _both_ways(path, CorruptFile)


def test_pdf_page_tree_loop(tmp_path: Path) -> None:
    _both_ways(build.page_tree_loop_pdf(tmp_path / "loop.pdf"), (CorruptFile, HostileFile))


def test_pdf_deep_page_tree(tmp_path: Path) -> None:
    _both_ways(build.deep_page_tree_pdf(tmp_path / "deep.pdf"), (CorruptFile, HostileFile))


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.docx"
    path.write_bytes(b"")
    _both_ways(path, EmptyFile)


def test_over_the_size_cap(tmp_path: Path) -> None:
    path = build.docx(tmp_path / "big.docx")
    _both_ways(path, FileTooLarge, Limits(max_object_bytes=1000))


def test_pdf_that_is_really_a_png(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    path.write_bytes(pixmap.tobytes("png"))
    for run in (extract_file, extract_isolated):
        result: Extraction = run(path, filename=path.name, limits=LIMITS)
        assert (result.content_type, result.outcome) == ("image/png", INDEXED)


def _png_bomb(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` grey PNG of zeros: a few hundred KB that decode to side² bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000))
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


def test_png_decompression_bomb(tmp_path: Path) -> None:
    path = _png_bomb(tmp_path / "bomb.png", 20_000)
    _both_ways(path, HostileFile, match="decompression bomb")


def test_png_bomb_beyond_the_memory_cap_in_the_sandbox(tmp_path: Path) -> None:
    # Given a pixel limit that lets the 400 Mpx image through, the memory cap still stops it
    path = _png_bomb(tmp_path / "bomb.png", 20_000)
    limits = Limits(max_image_pixels=10**9, max_memory_bytes=384 * 1024 * 1024,
                    max_seconds=TIME_CAP)  # fmt: skip
    with pytest.raises(HostileFile, match="resource limit"):
        extract_isolated(path, filename=path.name, limits=limits)
