"""Media type detection: magic bytes first, extension second (pure functions, real zip files)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from extractors import detect_media_type, guess_media_type_from_name, queue_kind
from extractors.detect import (
    DOCM,
    DOCUWORKS,
    DOCUWORKS_BINDER,
    DOCX,
    ODT,
    PPTX,
    XLSX,
    refine_zip_media_type,
)

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
OLE_HEAD = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 56
ZIP_HEAD = b"PK\x03\x04\x14\x00\x00\x00\x08\x00"
CONTENT_TYPES_DOCX = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a.pdf", "application/pdf"),
        (b"\r\n" + b" " * 500 + b"%PDF-1.4\n", "junk-before-header.pdf", "application/pdf"),
        (PNG_HEAD, "a.png", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a.jpg", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "a.gif", "image/gif"),
        (b"GIF87a\x01\x00\x01\x00", "a.gif", "image/gif"),
        (b"II*\x00\x08\x00\x00\x00", "a.tif", "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "a.tiff", "image/tiff"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
        (b"{\\rtf1\\ansi\\deff0", "a.rtf", "application/rtf"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "a.gz", "application/gzip"),
        (ZIP_HEAD, "a.zip", "application/zip"),
        (ZIP_HEAD, "noextension", "application/zip"),
        (OLE_HEAD, "a.doc", "application/msword"),
        (OLE_HEAD, "A.XLS", "application/vnd.ms-excel"),
        (OLE_HEAD, "a.ppt", "application/vnd.ms-powerpoint"),
        (OLE_HEAD, "a.msg", "application/x-ole-storage"),
        (b"", "empty.txt", "application/x-empty"),
    ],
)
def test_magic_bytes(head: bytes, filename: str, expected: str) -> None:
    assert detect_media_type(head, filename) == expected


@pytest.mark.parametrize(
    ("extension", "expected"),
    [
        ("docx", DOCX),
        ("xlsx", XLSX),
        ("pptx", PPTX),
        ("docm", DOCM),
        ("xlsm", "application/vnd.ms-excel.sheet.macroenabled.12"),
        ("pptm", "application/vnd.ms-powerpoint.presentation.macroenabled.12"),
        ("odt", ODT),
        ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
        ("odp", "application/vnd.oasis.opendocument.presentation"),
    ],
)
def test_zip_head_is_refined_by_extension(extension: str, expected: str) -> None:
    assert detect_media_type(ZIP_HEAD, f"report.{extension}") == expected


def test_content_wins_over_a_lying_extension() -> None:
    # Given PNG bytes named .pdf, and PDF bytes named .png
    # Then each is what its bytes say
    assert detect_media_type(PNG_HEAD, "invoice.pdf") == "image/png"
    assert detect_media_type(b"%PDF-1.5\n", "photo.png") == "application/pdf"
    # and a zip never becomes a Word document just because it is called .doc
    assert detect_media_type(ZIP_HEAD, "old.doc") == "application/zip"


def test_pdf_marker_only_counts_in_the_first_kib() -> None:
    late = b"x" * 1024 + b"%PDF-1.4"
    assert detect_media_type(late, "late.pdf") == "text/plain"


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"\xef\xbb\xbfhello", "a.bin", "text/plain"),
        ("hello".encode("utf-16"), "a.bin", "text/plain"),
        ("\ufeffname,value\n".encode("utf-16-le"), "a.csv", "text/csv"),
        (b"  \n<!DOCTYPE html><html><body>x", "page.txt", "text/html"),
        (b"\xef\xbb\xbf<HTML><BODY>x</BODY></HTML>", "page", "text/html"),
        ("<html><body>utf16</body></html>".encode("utf-16"), "page", "text/html"),
        (b'<?xml version="1.0"?><root/>', "data.txt", "application/xml"),
        (b'<?xml version="1.0"?>\n<!DOCTYPE html>\n<html/>', "p.xhtml", "text/html"),
        (b"a,b,c\n1,2,3\n", "data.csv", "text/csv"),
        (b"a\tb\n1\t2\n", "data.tsv", "text/tab-separated-values"),
        (b"# Title\n\nBody\n", "README.md", "text/markdown"),
        (b"just words\n", "notes.txt", "text/plain"),
        (b"just words\n", "no-extension", "text/plain"),
        (b"<p>fragment</p>", "frag.html", "text/html"),
        ("日本語のテキストです。".encode("cp932"), "sjis.txt", "text/plain"),
        ("日本語のテキストです。".encode("euc_jp"), "euc.txt", "text/plain"),
        ("日本語のテキスト".encode()[:-1], "cut-in-a-character.txt", "text/plain"),
        (b"\x00\x01\x02\x03binary", "blob.txt", "application/octet-stream"),
        (bytes(range(0x80, 0x100)) * 4, "high-bytes.dat", "application/octet-stream"),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08 control", "ctl.txt", "application/octet-stream"),
    ],
)
def test_text_family(head: bytes, filename: str, expected: str) -> None:
    assert detect_media_type(head, filename) == expected


def test_eml_needs_header_lines() -> None:
    mail = b"Received: from mx.example.jp\r\nFrom: a@example.jp\r\nSubject: hi\r\n\r\nbody\r\n"
    folded = b"Subject: a long\r\n subject line\r\nTo: b@example.jp\r\n\r\nbody"
    assert detect_media_type(mail, "message.eml") == "message/rfc822"
    assert detect_media_type(folded, "message.eml") == "message/rfc822"
    assert detect_media_type(b"not a header line\nFrom: x\n", "message.eml") == "text/plain"
    assert detect_media_type(mail, "message.txt") == "text/plain"


def test_docuworks_is_recognised_by_extension_when_binary() -> None:
    binary = b"\x00\x01\x02XDW binary body\x00\x00"
    assert detect_media_type(binary, "contract.xdw") == DOCUWORKS
    assert detect_media_type(binary, "binder.XBD") == DOCUWORKS_BINDER
    # content still wins: a ".xdw" that is really a PDF is a PDF
    assert detect_media_type(b"%PDF-1.6\n", "exported.xdw") == "application/pdf"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("a.pdf", "application/pdf"),
        ("dir/sub/Report.PDF", "application/pdf"),
        ("C:\\Users\\x\\book.xlsx", XLSX),
        ("scan.tiff", "image/tiff"),
        ("memo.txt", "text/plain"),
        ("table.csv", "text/csv"),
        ("doc.xdw", DOCUWORKS),
        ("archive.tar.gz", "application/gzip"),
        (".bashrc", "application/octet-stream"),
        ("no_extension", "application/octet-stream"),
        ("weird.unknownext", "application/octet-stream"),
    ],
)
def test_guess_media_type_from_name(filename: str, expected: str) -> None:
    assert guess_media_type_from_name(filename) == expected


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/pdf", "pdf"),
        ("Application/PDF; version=1.7", "pdf"),
        ("image/png", "ocr"),
        ("image/jpeg", "ocr"),
        ("text/plain", "other"),
        ("application/octet-stream", "other"),
    ],
)
def test_queue_kind(media_type: str, expected: str) -> None:
    assert queue_kind(media_type) == expected


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_refine_zip_by_content_types(tmp_path: Path) -> None:
    path = _zip(
        tmp_path / "upload.bin",
        {"[Content_Types].xml": CONTENT_TYPES_DOCX, "word/document.xml": b"<w:document/>"},
    )
    assert refine_zip_media_type(path, "application/zip") == DOCX


def test_refine_zip_by_folder_when_content_types_are_unusable(tmp_path: Path) -> None:
    path = _zip(tmp_path / "x.zip", {"[Content_Types].xml": b"<not xml", "xl/workbook.xml": b""})
    assert refine_zip_media_type(path, "application/zip") == XLSX
    path = _zip(tmp_path / "y.zip", {"word/document.xml": b"<w:document/>"})
    assert refine_zip_media_type(path, DOCM) == DOCM  # the extension keeps "macro-enabled"
    assert refine_zip_media_type(path, "application/zip") == DOCX


def test_refine_zip_by_odf_mimetype(tmp_path: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"mimetype": ODT.encode(), "content.xml": b"<office/>"})
    assert refine_zip_media_type(path, "application/zip") == ODT


def test_refine_real_libreoffice_document() -> None:
    default = Path(__file__).resolve().parents[1] / ".." / "shared/corpus/sample-files"
    source = Path(os.environ.get("SAMPLE_FILES_DIR", default))
    odt = source / "002-trivial-libre-office-writer/source.odt"
    if not odt.exists():
        pytest.skip(f"{odt} not available")
    assert refine_zip_media_type(odt, "application/zip") == ODT


def test_refine_plain_zip_named_docx_is_a_zip(tmp_path: Path) -> None:
    path = _zip(tmp_path / "photos.docx", {"a.jpg": b"\xff\xd8\xff"})
    assert refine_zip_media_type(path, DOCX) == "application/zip"


def test_refine_unreadable_zip_keeps_fallback(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(ZIP_HEAD + b"truncated")
    assert refine_zip_media_type(path, DOCX) == DOCX


def test_refine_does_not_extract_anything(tmp_path: Path) -> None:
    path = _zip(tmp_path / "evil.zip", {"../../escape.txt": b"x", "word/document.xml": b""})
    before = set(tmp_path.parent.rglob("*"))
    assert refine_zip_media_type(path, "application/zip") == DOCX
    assert set(tmp_path.parent.rglob("*")) == before
