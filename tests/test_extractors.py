"""Extraction against real files: the public PDF corpus and files built here with real libraries."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from extractors import (
    INDEXED,
    METADATA_ONLY,
    Extraction,
    Limits,
    extract_file,
    registered_types,
)
from extractors.detect import DOCUWORKS, DOCX
from extractors.pdf import normalize_pdf_date
from extractors.registry import Registry, lookup, register
from extractors.text import decode_bytes
from pipeline.errors import (
    CorruptFile,
    EmptyFile,
    ExtractionTimeout,
    FileTooLarge,
    TooManyPages,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE_FILES_DIR = Path(
    os.environ.get("SAMPLE_FILES_DIR", REPO / ".." / "shared/corpus/sample-files")
)
LIMITS = Limits()

#: corpus files MuPDF cannot read, with what happens instead
MUPDF_UNREADABLE = {
    # the page tree object is lost; MuPDF 1.28.2 repairs the xref but finds no page
    "017-unreadable-meta-data/unreadablemetadata.pdf",
}

#: real Japanese sentences (Natsume Soseki, a news-style line, kanji-only and katakana-only text)
JAPANESE_SAMPLES = [
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "東京都千代田区丸の内一丁目",
    "本日は晴天なり。明日の会議は午前十時から第三会議室で行います。",
    "コンピュータ・ネットワーク",
    "ｶﾀｶﾅ（半角）と全角カタカナが混じった行です。",
    "〒100-0005 東京都千代田区丸の内1-9-1\n電話：03-1234-5678\n",
]


def _corpus_entries() -> list[dict[str, Any]]:
    index = SAMPLE_FILES_DIR / "files.json"
    if not index.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(index.read_text(encoding="utf-8"))["data"]
    return entries


CORPUS = _corpus_entries()


@pytest.fixture
def corpus_dir() -> Path:
    if not (SAMPLE_FILES_DIR / "files.json").exists():
        message = f"PDF corpus not found at {SAMPLE_FILES_DIR} (set SAMPLE_FILES_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLE_FILES_DIR


def _corpus_file(corpus_dir: Path, entry: dict[str, Any]) -> Path:
    path = corpus_dir / entry["path"]
    if not path.exists():
        pytest.skip(f"{entry['path']} is listed in files.json but absent from this copy")
    return path


def _extract(path: Path, limits: Limits = LIMITS, **kwargs: Any) -> Extraction:
    return extract_file(path, filename=kwargs.pop("filename", path.name), limits=limits, **kwargs)


# --- the public PDF corpus -------------------------------------------------------------------


def test_corpus_lists_pdfs(corpus_dir: Path) -> None:
    assert sum(not entry["encrypted"] for entry in CORPUS) >= 20
    assert any(entry["encrypted"] for entry in CORPUS)


@pytest.mark.parametrize(
    "entry", [e for e in CORPUS if not e["encrypted"]], ids=lambda entry: entry["path"]
)
def test_corpus_page_count_and_dates(corpus_dir: Path, entry: dict[str, Any]) -> None:
    path = _corpus_file(corpus_dir, entry)
    if entry["path"] in MUPDF_UNREADABLE:
        with pytest.raises(CorruptFile):
            _extract(path)
        return
    result = _extract(path)
    assert result.outcome == INDEXED
    assert result.content_type == "application/pdf"
    assert result.pages == entry["pages"]
    assert result.text.count("\f") == entry["pages"] - 1
    if entry.get("creation_date") and "created" in result.metadata:
        # files.json's zone is not always the one in the file (008 says -01'00'); the local
        # date-time must agree
        assert result.metadata["created"][:19] == entry["creation_date"][:19]


@pytest.mark.parametrize(
    "entry", [e for e in CORPUS if e["encrypted"]], ids=lambda entry: entry["path"]
)
def test_corpus_encrypted_pdf_is_metadata_only(corpus_dir: Path, entry: dict[str, Any]) -> None:
    result = _extract(_corpus_file(corpus_dir, entry))
    assert result.outcome == METADATA_ONLY
    assert result.reason == "encrypted"
    assert result.text == ""
    assert result.pages == entry["pages"]


def test_corpus_text_outline_attachments_and_title(corpus_dir: Path) -> None:
    trivial = _extract(corpus_dir / "001-trivial/minimal-document.pdf")
    assert "Lorem ipsum" in trivial.text
    assert trivial.metadata["producer"] == "pdfTeX-1.40.23"
    assert trivial.metadata["created"] == "2022-04-03T18:05:42+02:00"

    outline = _extract(corpus_dir / "006-pdflatex-outline/pdflatex-outline.pdf")
    assert outline.metadata["outline"][:3] == ["Foo", "Bar", "Baz"]

    attached = _extract(corpus_dir / "025-attachment/with-attachment.pdf")
    assert attached.metadata["attachments"] == ["image.png"]

    titled = _extract(corpus_dir / "011-google-doc-document/google-doc-document.pdf")
    assert titled.title == "PDF Example Document"


# --- PDFs built here -------------------------------------------------------------------------


def _pdf(path: Path, pages: list[str], **save: Any) -> Path:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_text((72, 72), text, fontname="japan", fontsize=11)
    doc.set_metadata(
        {
            "title": "日本語のタイトル",
            "author": "夏目漱石",
            "creationDate": "D:20240102030405+09'00'",
            "modDate": "D:20240102",
        }
    )
    doc.save(path, **save)
    doc.close()
    return path


def test_japanese_and_english_pdf(tmp_path: Path) -> None:
    pages = ["吾輩は猫である。 I am a cat.", "Second page 二頁目"]
    path = _pdf(tmp_path / "mixed.pdf", pages)
    result = _extract(path)
    assert result.outcome == INDEXED
    assert result.pages == 2
    first, second = result.text.split("\f")
    assert "吾輩は猫である。" in first
    assert "I am a cat." in first
    assert "二頁目" in second
    assert result.title == "日本語のタイトル"
    assert result.author == "夏目漱石"
    assert result.metadata["created"] == "2024-01-02T03:04:05+09:00"
    assert result.metadata["modified"] == "2024-01-02T00:00:00"


def test_pdf_with_user_password_is_metadata_only(tmp_path: Path) -> None:
    path = _pdf(
        tmp_path / "locked.pdf",
        ["secret text"],
        encryption=pymupdf.mupdf.PDF_ENCRYPT_AES_256,
        user_pw="user",
        owner_pw="owner",
    )
    result = _extract(path)
    assert (result.outcome, result.reason, result.text) == (METADATA_ONLY, "encrypted", "")
    assert result.metadata["encrypted"] is True


def test_pdf_with_owner_password_only_opens_with_empty_password(tmp_path: Path) -> None:
    path = _pdf(
        tmp_path / "owner-only.pdf",
        ["readable text"],
        encryption=pymupdf.mupdf.PDF_ENCRYPT_AES_256,
        owner_pw="owner",
        user_pw="",
    )
    result = _extract(path)
    assert result.outcome == INDEXED
    assert "readable text" in result.text
    assert result.metadata["encrypted"] is True


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    whole = _pdf(tmp_path / "whole.pdf", ["some text"]).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[:300])
    with pytest.raises(CorruptFile) as raised:
        _extract(path)
    assert str(raised.value)  # carries the library's message


def test_pdf_over_page_limit(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "long.pdf", [f"page {n}" for n in range(5)])
    with pytest.raises(TooManyPages):
        _extract(path, Limits(max_pages=4))
    assert _extract(path, Limits(max_pages=5)).pages == 5


def test_pdf_text_limit_stops_reading_pages(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "wordy.pdf", [f"page-{n} " + "x" * 80 for n in range(10)])
    result = _extract(path, Limits(max_chars=150))
    assert result.truncated
    assert len(result.text) == 150
    assert result.text.startswith("page-0 ")
    assert "page-1 " in result.text
    assert "page-9" not in result.text
    assert result.pages == 10


def test_pdf_wall_time_limit(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "slow.pdf", ["text"])
    with pytest.raises(ExtractionTimeout):
        _extract(path, Limits(max_seconds=0.0))


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("D:20220403180542+02'00'", "2022-04-03T18:05:42+02:00"),
        ("D:20220403180542+02'00", "2022-04-03T18:05:42+02:00"),
        ("D:20220415133024-01'00'", "2022-04-15T13:30:24-01:00"),
        ("D:20230410074654Z", "2023-04-10T07:46:54+00:00"),
        ("D:20230410074654Z00'00'", "2023-04-10T07:46:54+00:00"),
        ("D:20220415114209", "2022-04-15T11:42:09"),
        ("D:2022", "2022-01-01T00:00:00"),
        ("20220403", "2022-04-03T00:00:00"),
        ("D:20221340000000", None),  # month 13
        ("yesterday", None),
        ("", None),
    ],
)
def test_normalize_pdf_date(raw: str, iso: str | None) -> None:
    assert normalize_pdf_date(raw) == iso


# --- detection through extract_file ----------------------------------------------------------


def test_png_named_pdf_is_handled_as_an_image(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 4, 4), False).tobytes())
    result = _extract(path)
    assert result.content_type == "image/png"
    assert (result.outcome, result.text) == (INDEXED, "")
    assert (result.metadata["width"], result.metadata["height"]) == (4, 4)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    with pytest.raises(EmptyFile):
        _extract(path)


def test_file_over_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileTooLarge):
        _extract(path, Limits(max_object_bytes=100))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


#: the smallest Word body: one paragraph
WORD_BODY = (
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>hello</w:t></w:r></w:p></w:body></w:document>"
)


def test_zip_named_docx_is_docx_by_extension(tmp_path: Path) -> None:
    # Given a real OOXML layout without [Content_Types].xml and the .docx extension
    path = _zip(tmp_path / "report.docx", {"word/document.xml": WORD_BODY})
    result = _extract(path)
    assert result.content_type == DOCX
    assert (result.outcome, result.text) == (INDEXED, "hello\n")


def test_zip_with_word_folder_is_docx_whatever_its_name(tmp_path: Path) -> None:
    path = _zip(tmp_path / "upload.zip", {"word/document.xml": WORD_BODY})
    assert _extract(path).content_type == DOCX


def test_plain_zip_named_docx_is_a_zip(tmp_path: Path) -> None:
    path = _zip(tmp_path / "photos.docx", {"a.txt": b"hello"})
    assert _extract(path).content_type == "application/zip"


def test_docuworks_is_metadata_only(tmp_path: Path) -> None:
    path = tmp_path / "contract.xdw"
    path.write_bytes(b"\x00\x01\x02\x03 binary DocuWorks body \x00")
    result = _extract(path)
    assert result.content_type == DOCUWORKS
    assert (result.outcome, result.reason) == (METADATA_ONLY, "unsupported-type")


def test_given_content_type_skips_detection(tmp_path: Path) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(b"\x89PNG looks like a png but we are told it is text")
    result = _extract(path, content_type="Text/Plain; charset=utf-8")
    assert result.content_type == "text/plain"
    assert result.text.endswith("told it is text")


# --- text and its encodings ------------------------------------------------------------------


@pytest.mark.parametrize("sentence", JAPANESE_SAMPLES)
@pytest.mark.parametrize("encoding", ["cp932", "euc_jp"])
def test_japanese_legacy_encodings(tmp_path: Path, sentence: str, encoding: str) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(sentence.encode(encoding))
    result = _extract(path)
    assert result.content_type == "text/plain"
    assert result.text == sentence
    assert result.metadata["encoding"] == encoding


def test_iso_2022_jp(tmp_path: Path) -> None:
    path = tmp_path / "mail-body.txt"
    path.write_bytes(JAPANESE_SAMPLES[0].encode("iso2022_jp"))
    result = _extract(path)
    assert result.text == JAPANESE_SAMPLES[0]
    assert result.metadata["encoding"] == "iso2022_jp"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("日本語 and English\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "日本語 and English\n".encode(), "utf-8-sig"),
        ("\ufeff日本語 and English\n".encode("utf-16-le"), "utf-16-le"),
        ("\ufeff日本語 and English\n".encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_unicode_encodings(tmp_path: Path, data: bytes, encoding: str) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes(data)
    result = _extract(path)
    assert result.text == "日本語 and English\n"
    assert result.metadata["encoding"] == encoding


def test_western_legacy_text_goes_through_charset_normalizer() -> None:
    sentence = "Grüße aus Köln: die Straße ist schön, das Café geöffnet. " * 3
    text, encoding = decode_bytes(sentence.encode("cp1252"))
    assert text == sentence
    assert encoding not in ("utf-8", "cp932", "euc_jp")


def test_text_file_over_char_limit_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("あいうえお" * 100, encoding="utf-8")
    result = _extract(path, Limits(max_chars=42))
    assert result.truncated
    assert result.text == ("あいうえお" * 9)[:42]


def test_text_reads_only_what_the_limit_needs(tmp_path: Path) -> None:
    # Given a file far bigger than max_chars * 4 bytes
    path = tmp_path / "huge.log"
    path.write_bytes(b"line\n" * 20_000)
    result = _extract(path, Limits(max_chars=10))
    # Then it is marked truncated and holds the first characters only
    assert result.truncated
    assert result.text == "line\nline\n"


def test_short_text_is_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes(b"a\r\nb\r\n")
    result = _extract(path, Limits(max_chars=4))
    assert (result.text, result.truncated) == ("a\nb\n", False)


def test_csv_tsv_and_markdown(tmp_path: Path) -> None:
    csv = tmp_path / "table.csv"
    csv.write_bytes("名前,値\n東京,1\n".encode("cp932"))
    result = _extract(csv)
    assert (result.content_type, result.text) == ("text/csv", "名前,値\n東京,1\n")

    tsv = tmp_path / "table.tsv"
    tsv.write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert _extract(tsv).content_type == "text/tab-separated-values"

    markdown = tmp_path / "README.md"
    markdown.write_text("intro\n\n## 使い方 ##\n\ntext\n", encoding="utf-8")
    result = _extract(markdown)
    assert (result.content_type, result.title) == ("text/markdown", "使い方")


def test_html_text_and_title(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(
        "<!DOCTYPE html><html><head><meta charset='shift_jis'><title> 会社 案内 </title>"
        "<style>body{color:red}</style><script>var hidden = 1;</script></head>"
        "<body><h1>ようこそ</h1><p>本文&amp;説明</p></body></html>".encode("cp932")
    )
    result = _extract(path)
    assert result.content_type == "text/html"
    assert result.title == "会社 案内"
    assert result.text == "ようこそ\n本文&説明"
    assert result.metadata["encoding"] == "shift_jis"


# --- registry --------------------------------------------------------------------------------


def _fake_extractor(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    return Extraction(content_type=content_type, text="fake")


def test_registry_rejects_duplicates_and_normalises_types() -> None:
    registry = Registry()
    registry.register("Application/X-Test", _fake_extractor)
    assert registry.lookup("application/x-test; charset=binary") is _fake_extractor
    assert registry.lookup("application/x-other") is None
    assert registry.registered_types() == ("application/x-test",)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("application/x-test", _fake_extractor)
    with pytest.raises(ValueError, match="not a media type"):
        registry.register("pdf", _fake_extractor)


def test_builtin_registrations() -> None:
    assert {"application/pdf", "text/plain", "text/csv", "text/html"} <= set(registered_types())
    assert {DOCX, "image/png", "application/rtf", "message/rfc822"} <= set(registered_types())
    assert DOCUWORKS not in registered_types()
    assert lookup("image/x-portable-anymap") is None
    with pytest.raises(ValueError):
        register("application/pdf", _fake_extractor)
