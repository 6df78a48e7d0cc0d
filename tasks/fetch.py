"""Stage 1, ``fetch``: check the object the event names and route it by what it really is.

Skips stale events before any expensive work, HEADs the object, reads its first bytes to detect
the media type (content first, extension second) and names the extract queue for that type.
"""

from __future__ import annotations

import logging
from typing import Any

from extractors import detect_media_type, queue_kind
from index import get_backend
from pipeline import storage
from pipeline.errors import EmptyFile, FileTooLarge
from pipeline.objects import ObjectRef
from pipeline.settings import get_settings
from tasks import app
from tasks.base import DONE, NEXT_QUEUE, PipelineTask

logger = logging.getLogger(__name__)


@app.task(base=PipelineTask, bind=True, name="tasks.fetch",
          max_retries=get_settings().retries_for("fetch"))
def fetch(self: PipelineTask, ref: dict[str, Any]) -> dict[str, Any]:
    obj = ObjectRef.from_dict(ref)
    storage.ensure_allowed(obj)
    log = obj.log_context()
    if get_backend().is_stale(obj.doc_id, obj.order):
        logger.info("stale event skipped: a newer version is indexed", extra=log)
        return {DONE: True, "why": "stale", "ref": obj.to_dict()}
    head = storage.head(obj)
    settings = get_settings()
    skip_reason = None
    if head["size"] == 0:
        skip_reason = EmptyFile.reason
    elif head["size"] > settings.max_object_bytes:
        skip_reason = FileTooLarge.reason
    first_bytes = storage.read_head(obj, head["size"]) if skip_reason is None else b""
    media_type = detect_media_type(first_bytes, obj.name) if first_bytes else (
        "application/x-empty" if head["size"] == 0 else "application/octet-stream")
    logger.info("fetched", extra={**log, "size": head["size"], "media_type": media_type,
                                  "skip_reason": skip_reason})
    kind = queue_kind(media_type)
    return {"ref": obj.to_dict(), "object": head, "media_type": media_type,
            "skip_reason": skip_reason, "ocr": kind == "ocr", NEXT_QUEUE: f"extract-{kind}"}
