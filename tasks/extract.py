"""Stage 2, ``extract``: download to a private temporary file, extract, claim-check big text.

Extraction runs in a forked sandbox with memory, CPU and wall-time caps
(``extractors.sandbox``), so a hostile file cannot take the worker down.  A file that cannot be
extracted (corrupt, hostile, too large, unsupported ...) becomes a metadata-only document with
the reason, so it is still found by name and folder.

OCR has its own queue, ``extract-ocr``, so its CPU load scales separately: images are routed
there by ``fetch``; a PDF whose pages have no text layer is sent there by the ``extract-pdf``
worker that found out (the same stage again, with ``ocr`` set; the chain continues from there).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from extractors import METADATA_ONLY, Extraction, Limits
from extractors.ocr import needs_ocr
from extractors.sandbox import extract_isolated
from pipeline import claimcheck, faults, storage
from pipeline.errors import ContentError
from pipeline.objects import ObjectRef
from pipeline.settings import Settings, get_settings
from tasks import app
from tasks.base import REROUTE, PipelineTask

#: the queue of OCR work
OCR_QUEUE = "extract-ocr"

logger = logging.getLogger(__name__)


def limits(settings: Settings) -> Limits:
    return Limits(max_object_bytes=settings.max_object_bytes, max_pages=settings.max_pages,
                  max_chars=settings.max_chars, max_seconds=settings.extract_max_seconds,
                  max_memory_bytes=settings.extract_max_memory_bytes,
                  max_ocr_pages=settings.max_ocr_pages)


def run_extraction(obj: ObjectRef, fetched: dict[str, Any], settings: Settings,
                   ocr: bool = False) -> Extraction:
    """The extraction of one object (with OCR if ``ocr``), in the sandbox; content errors
    become a metadata-only result."""
    media_type = str(fetched.get("media_type") or "application/octet-stream")
    if fetched.get("skip_reason"):
        return Extraction(content_type=media_type, outcome=METADATA_ONLY,
                          reason=str(fetched["skip_reason"]))
    try:
        with storage.downloaded(obj, settings.max_object_bytes,
                                etag=fetched["object"].get("etag")) as path:
            return extract_isolated(path, filename=obj.name, limits=limits(settings), ocr=ocr)
    except ContentError as exc:
        logger.warning("metadata only: %s", exc, extra={**obj.log_context(),
                                                        "reason": exc.reason})
        return Extraction(content_type=media_type, outcome=METADATA_ONLY, reason=exc.reason)


@app.task(base=PipelineTask, bind=True, name="tasks.extract",
          max_retries=get_settings().retries_for("extract"))
def extract(self: PipelineTask, fetched: dict[str, Any]) -> dict[str, Any]:
    obj = ObjectRef.from_dict(fetched.get("ref") if isinstance(fetched, dict) else None)
    settings = get_settings()
    started = time.monotonic()
    faults.before_extract(obj)
    ocr = bool(fetched.get("ocr"))
    result = run_extraction(obj, fetched, settings, ocr=ocr)
    if not ocr and settings.max_ocr_pages and needs_ocr(result):
        logger.info("pages without text: on to OCR", extra=obj.log_context())
        return {REROUTE: {"queue": OCR_QUEUE, "arg": {**fetched, "ocr": True}}}
    text: str | None = result.text
    text_ref = None
    if len(result.text.encode("utf-8")) > settings.inline_text_max_bytes:
        text_ref, text = claimcheck.store(obj.doc_id, result.text, settings), None
    logger.info("extracted", extra={**obj.log_context(), "outcome": result.outcome,
                                    "reason": result.reason, "pages": result.pages,
                                    "chars": len(result.text),
                                    "seconds": round(time.monotonic() - started, 3)})
    return {
        "ref": obj.to_dict(), "object": fetched["object"],
        "extraction": {"content_type": result.content_type, "outcome": result.outcome,
                       "reason": result.reason, "title": result.title,
                       "author": result.author, "pages": result.pages,
                       "truncated": result.truncated, "chars": len(result.text),
                       "metadata": result.metadata},
        "text": text, "text_ref": text_ref,
    }
