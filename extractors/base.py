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
