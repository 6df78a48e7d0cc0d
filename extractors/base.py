"""The extractor contract: a local file in, an ``Extraction`` out.

Extractors are plain functions registered by media type (see ``extractors.registry``).  They never
touch S3, the broker or the index; the ``extract`` task downloads the object to a temporary file,
calls ``extractors.extract_file`` and hands the result on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: outcome of a file whose text could be extracted
INDEXED = "indexed"
#: outcome of a file indexed by name, folder and metadata only
METADATA_ONLY = "metadata_only"


@dataclass(frozen=True)
class Limits:
    """Safety limits applied to every extraction (built from settings)."""

    #: bytes; larger objects are refused before download
    max_object_bytes: int = 512 * 1024 * 1024
    #: pages (PDF), sheets or slides; more is a ``TooManyPages`` error
    max_pages: int = 10_000
    #: characters of extracted text kept; the rest is cut and ``truncated`` is set
    max_chars: int = 5_000_000
    #: seconds of wall time per file
    max_seconds: float = 600.0
    #: bytes of address space of an isolated extraction (``RLIMIT_AS`` in the sandbox child)
    max_memory_bytes: int = 1024 * 1024 * 1024
    #: seconds of CPU time of an isolated extraction (``RLIMIT_CPU``); ``None``: ``max_seconds``
    max_cpu_seconds: float | None = None
    #: pages (PDF pages, TIFF frames) OCR'd at most per file; the rest stays without OCR text
    max_ocr_pages: int = 50
    #: seconds one ``tesseract`` run (one page) may take before it is killed
    max_ocr_page_seconds: float = 120.0
    #: Tesseract languages, ``+``-separated; missing ones are dropped (``eng`` is the last resort)
    ocr_languages: str = "jpn+eng"
    #: bytes decompressed at most from one ZIP-based file, nested archives included
    max_unzipped_bytes: int = 512 * 1024 * 1024
    #: uncompressed / compressed size of one zip entry above which it is a bomb
    max_zip_ratio: float = 250.0
    #: entries of one ZIP-based file (central directory), nested archives included
    max_zip_entries: int = 10_000
    #: archives inside the document opened at most (1: an embedded xlsx yes, a zip in it no)
    max_zip_depth: int = 1
    #: pixels of one image (``PIL.Image.MAX_IMAGE_PIXELS``); more is a decompression bomb
    max_image_pixels: int = 89_478_485

    @property
    def cpu_seconds(self) -> float:
        """The CPU-time limit in seconds: ``max_cpu_seconds``, or ``max_seconds`` if unset."""
        return self.max_seconds if self.max_cpu_seconds is None else self.max_cpu_seconds


@dataclass
class Extraction:
    """What an extractor found in one file."""

    #: detected media type, e.g. ``application/pdf``
    content_type: str
    #: ``indexed`` or ``metadata_only``
    outcome: str = INDEXED
    #: why the file is metadata-only (``encrypted``, ``unsupported-type`` ...), else ``None``
    reason: str | None = None
    text: str = ""
    title: str | None = None
    author: str | None = None
    #: pages, sheets or slides; ``None`` where the notion does not apply
    pages: int | None = None
    #: the text was cut at ``Limits.max_chars``
    truncated: bool = False
    #: further JSON-safe metadata (producer, created, modified, encoding, language ...)
    metadata: dict[str, Any] = field(default_factory=dict)

    def limit_text(self, max_chars: int) -> None:
        """Cut ``text`` to ``max_chars`` characters, marking the extraction truncated."""
        if len(self.text) > max_chars:
            self.text = self.text[:max_chars]
            self.truncated = True


class Extractor(Protocol):
    """A function that extracts one file of a known media type.

    Raises ``PermanentError`` subclasses (``CorruptFile``, ``HostileFile``, ``TooManyPages``)
    for files that can never be extracted.
    """

    def __call__(self, path: Path, *, content_type: str, limits: Limits) -> Extraction: ...
