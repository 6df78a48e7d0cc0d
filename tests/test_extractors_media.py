"""Images (Pillow) and OCR (the Tesseract CLI) on files built here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from extractors import INDEXED, Extraction, Limits, extract_file, ocr
from extractors.ocr import clean_ocr_text, needs_ocr, ocr_file
from pipeline.errors import HostileFile
from tests import fixtures_files as build
from tests.support import unavailable

LIMITS = Limits()


def _extract(path: Path, limits: Limits = LIMITS, *, ocr: bool = False) -> Extraction:
    return extract_file(path, filename=path.name, limits=limits, ocr=ocr)


@pytest.fixture
def tesseract() -> str:
    binary = ocr.tesseract_binary()
    if binary is None:
        unavailable(f"tesseract is not installed ({ocr.TESSERACT_PACKAGES})")
    if not {"jpn", "eng"} <= ocr.installed_languages(binary):
        unavailable(f"tesseract lacks jpn or eng data ({ocr.TESSERACT_PACKAGES})")
    return binary


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PATH", "/nonexistent")
    ocr.tesseract_binary.cache_clear()
    yield
    ocr.tesseract_binary.cache_clear()


def test_jpeg_size_exif_and_hash(tmp_path: Path) -> None:
    result = _extract(build.jpeg_with_exif(tmp_path / "photo.jpg"))
    assert (result.content_type, result.outcome, result.text) == ("image/jpeg", INDEXED, "")
    meta = result.metadata
    assert (meta["width"], meta["height"], meta["format"]) == (64, 48, "JPEG")
    assert (meta["camera_make"], meta["camera_model"]) == ("Canon", "EOS 5D")
    assert meta["taken"] == "2023-12-31T23:59:58"
    assert len(meta["phash"]) == 16 and int(meta["phash"], 16) >= 0


def test_perceptual_hash_survives_resizing_and_tells_images_apart(tmp_path: Path) -> None:
    from PIL import Image

    original = tmp_path / "original.png"
    Image.effect_mandelbrot((256, 192), (-2.0, -1.2, 1.0, 1.2), 100).save(original)
    with Image.open(original) as image:
        image.resize((128, 96)).save(tmp_path / "small.png")
    Image.radial_gradient("L").resize((256, 192)).save(tmp_path / "other.png")
    hashes = {name: _extract(tmp_path / name).metadata["phash"] for name in
              ("original.png", "small.png", "other.png")}  # fmt: skip

    def distance(a: str, b: str) -> int:
        return bin(int(hashes[a], 16) ^ int(hashes[b], 16)).count("1")

    assert distance("original.png", "small.png") <= 4
    assert distance("original.png", "other.png") >= 16


def test_png_and_multipage_tiff(tmp_path: Path) -> None:
    png = _extract(build.png(tmp_path / "a.png"))
    assert (png.metadata["width"], png.metadata["height"], png.pages) == (40, 30, None)
    tiff = _extract(build.multipage_tiff(tmp_path / "pages.tif"))
    assert (tiff.content_type, tiff.pages, tiff.metadata["frames"]) == ("image/tiff", 3, 3)


def test_image_over_the_pixel_limit_is_hostile(tmp_path: Path) -> None:
    path = build.png(tmp_path / "big.png", size=(200, 200))
    with pytest.raises(HostileFile, match="decompression bomb"):
        _extract(path, Limits(max_image_pixels=10_000))


def test_needs_ocr() -> None:
    assert needs_ocr(Extraction(content_type="image/png"))
    assert not needs_ocr(Extraction(content_type="image/png", metadata={"ocr": "done"}))
    assert not needs_ocr(Extraction(content_type="application/pdf"))
    assert needs_ocr(Extraction(content_type="application/pdf", metadata={"textless_pages": 1}))
    assert not needs_ocr(Extraction(content_type="text/plain"))
    assert not needs_ocr(Extraction(content_type="image/png", outcome="metadata_only"))


def test_clean_ocr_text_drops_spaces_between_japanese_characters() -> None:
    cleaned = clean_ocr_text("日 本 語 の 文字 and English words\n\n")
    assert cleaned == "日本語の文字 and English words"


def test_scanned_pdf_is_ocr_d_in_english_and_japanese(tmp_path: Path, tesseract: str) -> None:
    # Given a PDF whose two pages are only pictures of text
    path = build.scanned_pdf(
        tmp_path / "scan.pdf",
        [["Invoice number 12345", "Total amount due: 300 dollars"],
         ["請求書の合計金額 Invoice total", "東京都千代田区丸の内"]],
    )  # fmt: skip
    # When it is extracted without OCR, then it has no text but says OCR would help
    plain = _extract(path)
    assert plain.text.strip("\f") == ""
    assert plain.metadata["textless_pages"] == 2 and needs_ocr(plain)
    # When the OCR queue runs, then the words drawn into each page are found on that page
    result = ocr_file(path, "application/pdf", LIMITS)
    first, second = result.text.split("\f")
    assert "Invoice number 12345" in first and "Total amount due" in first
    assert "請求書の合計金額" in second and "丸の内" in second
    assert result.metadata["ocr"] == "done" and result.metadata["ocr_pages"] == [1, 2]
    assert result.metadata["language"] == "ja"
    assert not needs_ocr(result)


def test_image_ocr_in_one_call(tmp_path: Path, tesseract: str) -> None:
    path = tmp_path / "receipt.png"
    build.text_image(["Scanned receipt from Tokyo", "領収書 東京都千代田区丸の内"]).save(path)
    result = _extract(path, ocr=True)
    assert "Scanned receipt from Tokyo" in result.text
    assert "丸の内" in result.text
    assert result.metadata["ocr"] == "done" and "phash" in result.metadata


def test_ocr_page_cap(tmp_path: Path, tesseract: str) -> None:
    path = build.scanned_pdf(tmp_path / "scan.pdf", [["first page"], ["second page"]])
    result = _extract(path, Limits(max_ocr_pages=1), ocr=True)
    assert result.metadata["ocr"] == "partial" and result.metadata["ocr_pages"] == [1]
    assert "first page" in result.text and "second" not in result.text


def test_ocr_without_tesseract_leaves_the_extraction_as_it_is(
    tmp_path: Path, no_tesseract: None
) -> None:
    path = build.scanned_pdf(tmp_path / "scan.pdf", [["some words"]])
    result = _extract(path, ocr=True)
    assert result.outcome == INDEXED and result.text == ""
    assert result.metadata["ocr"] == "unavailable"
