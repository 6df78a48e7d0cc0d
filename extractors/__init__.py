"""Extractors: a local file in, an ``Extraction`` out.

``extract_file`` detects the media type (magic bytes first, extension second), looks the
extractor up in the explicit registry and applies the limits.  Types without an extractor are
indexed by name and metadata only.  OCR is left out unless ``ocr=True`` (``extractors.ocr``);
``extractors.sandbox.extract_isolated`` runs the same in a child under memory and CPU limits.
"""

from __future__ import annotations

import logging
from pathlib import Path

from extractors.base import INDEXED, METADATA_ONLY, Extraction, Extractor, Limits
from extractors.detect import (
    DOCM,
    DOCX,
    EML,
    HEAD_BYTES,
    ODP,
    ODS,
    ODT,
    PPTM,
    PPTX,
    XLSM,
    XLSX,
    ZIP,
    ZIP_DOCUMENT_TYPES,
    detect_media_type,
    guess_media_type_from_name,
    queue_kind,
    refine_zip_media_type,
)
from extractors.html import extract_html
from extractors.image import extract_image
from extractors.language import guess_language
from extractors.mail import extract_mail
from extractors.ocr import apply_ocr
from extractors.odf import extract_odf
from extractors.ooxml import extract_ooxml
from extractors.pdf import extract_pdf
from extractors.registry import lookup, normalize_media_type, register, registered_types
from extractors.rtf import extract_rtf
from extractors.text import extract_text
from pipeline.errors import ContentError, CorruptFile, EmptyFile, FileTooLarge, HostileFile

__all__ = [
    "INDEXED",
    "METADATA_ONLY",
    "Extraction",
    "Extractor",
    "Limits",
    "detect_file_media_type",
    "detect_media_type",
    "extract_file",
    "guess_media_type_from_name",
    "queue_kind",
    "registered_types",
]

logger = logging.getLogger(__name__)

#: reason of a metadata-only extraction for a type without an extractor
UNSUPPORTED_TYPE = "unsupported-type"

#: the built-in extractors, registered once when the package is imported
_BUILTINS: tuple[tuple[str, Extractor], ...] = (
    ("application/pdf", extract_pdf),
    ("text/plain", extract_text),
    ("text/csv", extract_text),
    ("text/tab-separated-values", extract_text),
    ("text/markdown", extract_text),
    ("text/html", extract_html),
    ("application/rtf", extract_rtf),
    (EML, extract_mail),
    *((media_type, extract_ooxml) for media_type in (DOCX, XLSX, PPTX, DOCM, XLSM, PPTM)),
    *(
        (f"application/vnd.openxmlformats-officedocument.{kind}", extract_ooxml)
        for kind in (
            "wordprocessingml.template",
            "spreadsheetml.template",
            "presentationml.template",
            "presentationml.slideshow",
        )
    ),
    *((media_type, extract_odf) for media_type in (ODT, ODS, ODP)),
    *(
        (f"image/{kind}", extract_image)
        for kind in ("png", "jpeg", "tiff", "gif", "webp")
    ),
)


def _register_builtins() -> None:
    """Register the built-in extractors in the default registry (once per process)."""
    for media_type, extractor in _BUILTINS:
        register(media_type, extractor)


_register_builtins()


def detect_file_media_type(path: Path, filename: str) -> str:
    """Media type of a local file: its first ``HEAD_BYTES`` and ``filename``, ZIPs opened.

    Raises ``OSError`` if the file cannot be read.
    """
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    media_type = detect_media_type(head, filename)
    if media_type == ZIP or media_type in ZIP_DOCUMENT_TYPES:
        media_type = refine_zip_media_type(path, fallback=media_type)
    return media_type


def extract_file(
    path: Path,
    *,
    filename: str,
    limits: Limits,
    content_type: str | None = None,
    ocr: bool = False,
) -> Extraction:
    """Extract one local file; ``filename`` is the object's name (its extension is a hint only).

    ``content_type`` skips detection when given.  Files of types without a registered extractor
    come back ``metadata_only`` with reason ``unsupported-type``.  The text is always cut to
    ``limits.max_chars``; ``metadata["language"]`` gets a cheap guess.  With ``ocr=True``, images
    and image-only PDF pages are also OCR'd (``extractors.ocr.apply_ocr``); without it, ask
    ``extractors.ocr.needs_ocr`` whether OCR would add text.

    Raises ``EmptyFile`` for a zero-byte file, ``FileTooLarge`` above ``limits.max_object_bytes``,
    whatever the extractor raises (``CorruptFile``, ``TooManyPages``, ``HostileFile``,
    ``ExtractionTimeout``), and ``OSError`` if the file cannot be read.  A bug in an extractor
    (any other exception) is logged and raised as ``CorruptFile``; exhausted memory or recursion
    as ``HostileFile``.
    """
    size = path.stat().st_size
    if size == 0:
        raise EmptyFile(f"{filename} has zero bytes", filename=filename)
    if size > limits.max_object_bytes:
        raise FileTooLarge(
            f"{filename} has {size} bytes, limit {limits.max_object_bytes}",
            filename=filename,
            size=size,
            max_object_bytes=limits.max_object_bytes,
        )
    if content_type is None:
        media_type = detect_file_media_type(path, filename)
    else:
        media_type = normalize_media_type(content_type)
    extractor = lookup(media_type)
    if extractor is None:
        logger.info("no extractor for %s (%s); indexing metadata only", media_type, filename)
        return Extraction(content_type=media_type, outcome=METADATA_ONLY, reason=UNSUPPORTED_TYPE)
    extraction = _run(extractor, path, media_type, limits, filename)
    extraction.limit_text(limits.max_chars)
    language = guess_language(extraction.text) if extraction.text else None
    if language and "language" not in extraction.metadata:
        extraction.metadata["language"] = language
    if ocr:
        apply_ocr(path, extraction, limits)
    return extraction


def _run(
    extractor: Extractor, path: Path, media_type: str, limits: Limits, filename: str
) -> Extraction:
    """Call ``extractor``; anything but ``ContentError``/``OSError`` becomes a ``ContentError``."""
    try:
        return extractor(path, content_type=media_type, limits=limits)
    except (ContentError, OSError):
        raise
    except (MemoryError, RecursionError) as exc:
        raise HostileFile(f"resource limit: {type(exc).__name__} extracting {filename}") from exc
    except Exception as exc:
        logger.exception("extractor for %s failed on %s", media_type, filename)
        raise CorruptFile(f"{media_type} extractor failed: {type(exc).__name__}: {exc}") from exc
