"""OCR with the Tesseract CLI for images and for PDF pages without a text layer.

OCR is slow, so ``extract_file`` leaves it out; the pipeline asks ``needs_ocr(extraction)`` and
then runs ``ocr_file`` (or ``apply_ocr`` on the extraction it has) on its OCR queue.  Tesseract
runs as a subprocess with a per-page timeout, at most ``Limits.max_ocr_pages`` pages, within the
file's ``Limits.max_seconds``.  Without Tesseract, OCR leaves the text as it is and sets
``metadata["ocr"] = "unavailable"``.

``metadata["ocr"]`` after OCR: ``done``, ``partial`` (page cap or time budget reached, or some
pages failed), ``failed`` (no page could be read), ``unavailable``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from extractors.base import INDEXED, Extraction, Limits
from extractors.budget import Deadline
from extractors.image import open_image
from extractors.language import guess_language
from extractors.pdf import PAGE_SEPARATOR, is_image_only

logger = logging.getLogger(__name__)

#: the Debian packages that provide what this module runs
TESSERACT_PACKAGES = "apt-get install -y tesseract-ocr tesseract-ocr-jpn"
#: image types Tesseract is given (through a grey PNG rendered by Pillow)
OCR_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/tiff", "image/gif", "image/webp"})
PDF = "application/pdf"
#: resolution PDF pages are rendered at for OCR
OCR_DPI = 300
#: pixels of one rendered PDF page at most (the resolution drops for huge pages)
MAX_RENDER_PIXELS = 40_000_000
#: Tesseract page segmentation mode: fully automatic layout analysis
PAGE_SEGMENTATION = "3"

DONE, PARTIAL, FAILED, UNAVAILABLE = "done", "partial", "failed", "unavailable"

#: spaces Tesseract puts between Japanese characters
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff9f"
_CJK_SPACES = re.compile(f"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")


@functools.cache
def tesseract_binary() -> str | None:
    """Path of the ``tesseract`` executable, or ``None`` (cached per process)."""
    return shutil.which("tesseract")


@functools.cache
def installed_languages(binary: str) -> frozenset[str]:
    """Languages Tesseract has data for (``tesseract --list-langs``); empty on any failure."""
    try:
        listing = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("tesseract --list-langs failed: %s", exc)
        return frozenset()
    lines = (listing.stdout + listing.stderr).splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip() and " " not in line)


def _languages(binary: str, wanted: str) -> str | None:
    """The wanted languages that are installed, ``+``-joined; ``None`` if none is."""
    installed = installed_languages(binary)
    usable = [lang for lang in wanted.split("+") if lang in installed]
    return "+".join(usable) or None


def needs_ocr(extraction: Extraction) -> bool:
    """The extraction would gain text from OCR: an image, or a PDF with image-only pages.

    False once OCR ran (``metadata["ocr"]`` is set) and for metadata-only outcomes.
    """
    if extraction.outcome != INDEXED or "ocr" in extraction.metadata:
        return False
    if extraction.content_type in OCR_IMAGE_TYPES:
        return True
    return extraction.content_type == PDF and extraction.metadata.get("textless_pages", 0) > 0


def clean_ocr_text(text: str) -> str:
    """Tesseract's output without the spaces between CJK characters and blank lines at the ends."""
    lines = (_CJK_SPACES.sub("", line).rstrip() for line in text.splitlines())
    return "\n".join(lines).strip("\n")


def run_tesseract(image: Path, languages: str, timeout: float) -> str:
    """Text Tesseract reads in ``image``.

    Raises ``subprocess.TimeoutExpired`` (the process is killed) and ``OSError``/
    ``subprocess.CalledProcessError`` if it cannot run or fails.
    """
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # one core per page; the workers are parallel
    done = subprocess.run(
        ["tesseract", str(image), "stdout", "-l", languages, "--psm", PAGE_SEGMENTATION],
        capture_output=True, timeout=max(timeout, 0.1), env=env, check=True,
        executable=tesseract_binary(),
    )  # fmt: skip
    return clean_ocr_text(done.stdout.decode("utf-8", "replace"))


class _Run:
    """One file's OCR: pages read, failures, whether it stopped early."""

    def __init__(self, limits: Limits, languages: str, workdir: Path) -> None:
        self.limits, self.languages, self.workdir = limits, languages, workdir
        self.deadline = Deadline(limits)
        self.pages: list[int] = []
        self.failed = 0
        self.stopped = False

    def read(self, number: int, image: Path) -> str | None:
        """OCR one rendered page (1-based ``number``); ``None`` if it failed or time ran out."""
        timeout = min(self.limits.max_ocr_page_seconds, self.deadline.remaining)
        if timeout <= 0 or len(self.pages) + self.failed >= self.limits.max_ocr_pages:
            self.stopped = True
            return None
        try:
            text = run_tesseract(image, self.languages, timeout)
        except subprocess.TimeoutExpired:
            logger.warning("OCR of page %d timed out after %.0fs", number, timeout)
            self.stopped = True
            return None
        except (OSError, subprocess.CalledProcessError) as exc:
            logger.warning("OCR of page %d failed: %s", number, exc)
            self.failed += 1
            return None
        self.pages.append(number)
        return text

    def status(self) -> str:
        if not self.pages and (self.failed or self.stopped):
            return FAILED
        return PARTIAL if (self.failed or self.stopped) else DONE


def _ocr_pdf(path: Path, extraction: Extraction, run: _Run) -> None:
    """Replace the text of image-only pages with what OCR reads on them."""
    import pymupdf

    pages = extraction.text.split(PAGE_SEPARATOR)
    with pymupdf.open(path, filetype="pdf") as doc:
        for index in range(doc.page_count):
            page = doc.load_page(index)
            if not is_image_only(page, page.get_text("text")):
                continue
            area = max(page.rect.width * page.rect.height, 1.0)
            zoom = min(OCR_DPI / 72, (MAX_RENDER_PIXELS / area) ** 0.5)
            image = run.workdir / f"page-{index + 1}.png"
            page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY).save(
                image
            )
            text = run.read(index + 1, image)
            image.unlink(missing_ok=True)
            if run.stopped:
                break
            if text is not None and index < len(pages):
                pages[index] = text
    extraction.text = PAGE_SEPARATOR.join(pages)


def _ocr_image(path: Path, extraction: Extraction, run: _Run) -> None:
    """Set the text to what OCR reads in each frame (TIFF pages separated by form feeds)."""
    texts: list[str] = []
    with open_image(path, run.limits) as image:
        for index in range(int(getattr(image, "n_frames", 1) or 1)):
            image.seek(index)
            rendered = run.workdir / f"frame-{index + 1}.png"
            image.convert("L").save(rendered, format="PNG")
            text = run.read(index + 1, rendered)
            rendered.unlink(missing_ok=True)
            if run.stopped:
                break
            texts.append(text or "")
    extraction.text = PAGE_SEPARATOR.join(texts).strip(PAGE_SEPARATOR)


def apply_ocr(path: Path, extraction: Extraction, limits: Limits) -> Extraction:
    """Add OCR text to ``extraction`` of the file at ``path`` (changed in place and returned).

    Does nothing unless ``needs_ocr(extraction)``.  Records ``metadata["ocr"]``, the pages read
    (``ocr_pages``), the languages and the seconds spent.  Raises ``HostileFile``/``CorruptFile``
    only for an image Pillow refuses (it was opened once already, so in practice never).
    """
    if not needs_ocr(extraction):
        return extraction
    binary = tesseract_binary()
    languages = _languages(binary, limits.ocr_languages) if binary else None
    if binary is None or languages is None:
        logger.warning("OCR unavailable (install: %s)", TESSERACT_PACKAGES)
        extraction.metadata["ocr"] = UNAVAILABLE
        return extraction
    with tempfile.TemporaryDirectory(prefix="ocr-") as workdir:
        run = _Run(limits, languages, Path(workdir))
        if extraction.content_type == PDF:
            _ocr_pdf(path, extraction, run)
        else:
            _ocr_image(path, extraction, run)
    info: dict[str, Any] = {
        "ocr": run.status(),
        "ocr_languages": languages,
        "ocr_pages": run.pages,
        "ocr_seconds": round(run.deadline.elapsed, 2),
    }
    extraction.metadata.update(info)
    extraction.limit_text(limits.max_chars)
    language = guess_language(extraction.text)
    if language:
        extraction.metadata["language"] = language
    return extraction


def ocr_file(
    path: Path, content_type: str, limits: Limits, *, filename: str | None = None
) -> Extraction:
    """Extract ``path`` as ``content_type`` and add OCR text where it is needed (one call).

    This is the OCR queue's entry point; it raises what ``extractors.extract_file`` raises.
    """
    from extractors import extract_file

    return extract_file(
        path, filename=filename or path.name, limits=limits, content_type=content_type, ocr=True
    )
