"""Office documents, RTF, mail and text built with real libraries, extracted through
``extract_file``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from extractors import INDEXED, Extraction, Limits, extract_file
from extractors.detect import DOCM, DOCX, ODP, ODS, ODT, PPTX, XLSM, XLSX
from pipeline.errors import CorruptFile, TooManyPages
from tests import fixtures_files as build

LIMITS = Limits()
S_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _extract(path: Path, limits: Limits = LIMITS) -> Extraction:
    return extract_file(path, filename=path.name, limits=limits)


def test_docx_text_tables_headers_and_properties(tmp_path: Path) -> None:
    result = _extract(build.docx(tmp_path / "報告.docx"))
    assert (result.content_type, result.outcome) == (DOCX, INDEXED)
    lines = result.text.splitlines()
    assert lines[:2] == ["売上報告", "本日は晴天なり。 Sales grew in the third quarter."]
    assert {"地域", "売上", "東京", "1200"} <= set(lines)
    assert "社外秘 confidential header" in lines and "footer text" in lines
    assert (result.title, result.author) == (build.TITLE, build.AUTHOR)
    assert result.metadata["created"] == "2024-01-02T03:04:05+00:00"
    assert result.metadata["language"] == "ja"


def test_xlsx_sheets_shared_strings_numbers_booleans(tmp_path: Path) -> None:
    result = _extract(build.xlsx(tmp_path / "book.xlsx"))
    assert result.content_type == XLSX
    first, second = result.text.split("\f")
    rows = ["売上", "地域\t金額\t達成", "東京\t1200\tTRUE", "大阪\t800.5\tFALSE"]
    assert first.splitlines() == rows
    assert second.splitlines() == ["Notes", "remember the milk"]
    assert result.pages == 2
    assert result.metadata["sheets"] == ["売上", "Notes"]
    assert (result.title, result.author) == (build.TITLE, build.AUTHOR)


def test_xlsx_inline_strings_and_phonetic_guides(tmp_path: Path) -> None:
    # Given a workbook written by hand: an inline string and a shared string with furigana
    sheet = (
        f'<worksheet xmlns="{S_MAIN}"><sheetData><row r="1">'
        '<c r="A1" t="inlineStr"><is><t>インライン</t></is></c><c r="B1" t="s"><v>0</v></c>'
        '<c r="C1" t="str"><v>formula text</v></c></row></sheetData></worksheet>'
    ).encode()
    shared = (
        f'<sst xmlns="{S_MAIN}"><si><r><t>東京</t></r><r><t>都</t></r>'
        "<rPh sb='0' eb='2'><t>トウキョウ</t></rPh></si></sst>"
    ).encode()
    path = build.zip_of(tmp_path / "hand.xlsm", _minimal_workbook(sheet, shared))
    result = _extract(path)
    assert result.content_type == XLSM
    assert result.text == "Sheet1\nインライン\t東京都\tformula text\n"
    assert result.metadata["macros"] is True


def _minimal_workbook(sheet: bytes, shared: bytes) -> dict[str, bytes]:
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    return {
        "xl/workbook.xml": (
            f'<workbook xmlns="{S_MAIN}" xmlns:r="{rels}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{package}">'
            f'<Relationship Id="rId1" Type="{rels}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rels}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": shared,
        "xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 macros",
    }


def test_pptx_slides_in_order_with_notes(tmp_path: Path) -> None:
    result = _extract(build.pptx(tmp_path / "deck.pptx"))
    assert result.content_type == PPTX
    first, second = result.text.split("\f")
    assert "第一章 はじめに" in first and "speaker notes one" in first
    assert "結論とまとめ" in second and "notes two" in second
    assert result.pages == 2
    assert (result.title, result.author) == (build.TITLE, build.AUTHOR)


def test_macro_enabled_word_by_extension(tmp_path: Path) -> None:
    source = build.docx(tmp_path / "plain.docx")
    path = tmp_path / "macro.docm"
    with zipfile.ZipFile(source) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    members.pop("[Content_Types].xml")
    build.zip_of(path, {**members, "word/vbaProject.bin": b"macros"})
    result = _extract(path)
    assert result.content_type == DOCM
    assert "売上報告" in result.text and result.metadata["macros"] is True


def test_slides_over_the_page_limit(tmp_path: Path) -> None:
    with pytest.raises(TooManyPages):
        _extract(build.pptx(tmp_path / "deck.pptx"), Limits(max_pages=1))


def test_office_text_over_the_char_limit_is_truncated(tmp_path: Path) -> None:
    result = _extract(build.docx(tmp_path / "long.docx"), Limits(max_chars=6))
    assert (result.text, result.truncated) == ("売上報告\n本", True)


def test_odt_paragraphs_spaces_and_meta(tmp_path: Path) -> None:
    result = _extract(build.odt(tmp_path / "letter.odt"))
    assert result.content_type == ODT
    assert result.text == "見出し Heading\n吾輩は猫である。 Named   cat\n"
    assert (result.title, result.author) == (build.TITLE, build.AUTHOR)
    assert result.metadata["created"] == "2024-01-02T03:04:05"


def test_ods_rows_and_sheets(tmp_path: Path) -> None:
    result = _extract(build.ods(tmp_path / "budget.ods"))
    assert result.content_type == ODS
    assert result.text == "予算\n項目\t金額\n家賃\t80000\n\fOther\nx\n"
    assert (result.pages, result.metadata["sheets"]) == (2, ["予算", "Other"])


def test_odp_slides(tmp_path: Path) -> None:
    result = _extract(build.odp(tmp_path / "talk.odp"))
    assert result.content_type == ODP
    assert result.text == "最初のスライド\n\fsecond slide text\n"
    assert result.pages == 2


def test_odf_without_content_is_corrupt(tmp_path: Path) -> None:
    path = build.zip_of(tmp_path / "empty.odt", {"mimetype": ODT.encode()})
    with pytest.raises(CorruptFile):
        _extract(path)


def test_rtf_shift_jis_unicode_and_info(tmp_path: Path) -> None:
    result = _extract(build.rtf(tmp_path / "memo.rtf"))
    assert result.content_type == "application/rtf"
    assert result.text == "Hello bold world\n日本語の本文\nあ\tend"
    assert (result.title, result.author) == ("RTF 日本", "Taro")
    assert result.metadata["created"] == "2024-01-02T03:04:00"
    assert result.metadata["encoding"] == "cp932"


def test_rtf_deep_groups_do_not_recurse(tmp_path: Path) -> None:
    path = tmp_path / "deep.rtf"
    path.write_bytes(b"{\\rtf1 " + b"{" * 200_000 + b"deep" + b"}" * 200_000 + b"}")
    assert _extract(path).text == "deep"


def test_eml_headers_body_and_attachments(tmp_path: Path) -> None:
    result = _extract(build.eml(tmp_path / "mail.eml"))
    assert result.content_type == "message/rfc822"
    assert (result.title, result.author) == ("会議の議事録 minutes", "山田 <yamada@example.jp>")
    assert result.text.startswith("本文です。\nPlain body line.")
    assert "HTML 本文" not in result.text  # the plain alternative wins
    assert "--- memo.txt ---\nメモ attachment text" in result.text
    assert result.metadata["created"] == "2024-01-02T03:04:05+09:00"
    assert result.metadata["attachments"] == [
        {"name": "memo.txt", "content_type": "text/plain", "size": 22},
        {"name": "画像.png", "content_type": "image/png", "size": 48},
    ]


def test_eml_html_only_body_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "html.eml"
    path.write_bytes(
        b"From: a@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + "<p>こんにちは</p><script>x()</script>".encode()
    )
    result = _extract(path)
    assert (result.title, result.text) == ("テスト", "こんにちは")


def test_shift_jis_text_and_csv(tmp_path: Path) -> None:
    text = tmp_path / "sjis.txt"
    text.write_bytes("吾輩は猫である。名前はまだ無い。\n".encode("shift_jis"))
    result = _extract(text)
    assert result.text == "吾輩は猫である。名前はまだ無い。\n"
    assert result.metadata["encoding"] == "cp932"
    assert result.metadata["language"] == "ja"
    csv = tmp_path / "table.csv"
    csv.write_text("name,city\nAlice,Tokyo\n", encoding="utf-8")
    assert _extract(csv).text == "name,city\nAlice,Tokyo\n"


def test_html_title_and_language(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>About us</title></head><body><p>This is the page of the company "
        "and it is in English.</p></body></html>",
        encoding="utf-8",
    )
    result = _extract(path)
    assert (result.title, result.metadata["language"]) == ("About us", "en")


def test_libreoffice_odt_from_the_corpus() -> None:
    source = Path(__file__).resolve().parents[1] / ".." / "shared/corpus/sample-files"
    odt = source / "002-trivial-libre-office-writer/source.odt"
    if not odt.exists():
        pytest.skip(f"{odt} not available")
    result = _extract(odt)
    assert (result.content_type, result.pages) == (ODT, 1)
    assert result.text.startswith("Lorem ipsum dolor sit amet")
    assert result.metadata["created"] == "2022-04-03T19:29:38.552950"
