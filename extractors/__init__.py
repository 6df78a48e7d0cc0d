"""Extractors: a local file in, an ``Extraction`` out.

``extract_file`` detects the media type (magic bytes first, extension second), looks the
extractor up in the explicit registry and applies the limits.  Types without an extractor are
indexed by name and metadata only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from extractors.base import INDEXED, METADATA_ONLY, Extraction, Extractor, Limits
from extractors.detect import (
    HEAD_BYTES,
    ZIP,
    ZIP_DOCUMENT_TYPES,
    detect_media_type,
    guess_media_type_from_name,
    queue_kind,
    refine_zip_media_type,
)
from extractors.html import extract_html
from extractors.pdf import extract_pdf
from extractors.registry import lookup, normalize_media_type, register, registered_types
from extractors.text import extract_text
from pipeline.errors import EmptyFile, FileTooLarge

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
    path: Path, *, filename: str, limits: Limits, content_type: str | None = None
) -> Extraction:
    """Extract one local file; ``filename`` is the object's name (its extension is a hint only).

    ``content_type`` skips detection when given.  Files of types without a registered extractor
    come back ``metadata_only`` with reason ``unsupported-type``.  The text is always cut to
    ``limits.max_chars``.

    Raises ``EmptyFile`` for a zero-byte file, ``FileTooLarge`` above ``limits.max_object_bytes``,
    whatever the extractor raises (``CorruptFile``, ``TooManyPages``, ``HostileFile``,
    ``ExtractionTimeout``), and ``OSError`` if the file cannot be read.
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
    extraction = extractor(path, content_type=media_type, limits=limits)
    extraction.limit_text(limits.max_chars)
    return extraction
