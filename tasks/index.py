"""Stage 3, ``index``: write the document (ordered, safe to repeat); ``remove`` for deletions."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from index import Document, get_backend
from pipeline import claimcheck, faults
from pipeline.objects import ObjectRef
from pipeline.settings import get_settings
from tasks import app
from tasks.base import PipelineTask

logger = logging.getLogger(__name__)


def build_document(obj: ObjectRef, extracted: dict[str, Any], text: str) -> Document:
    ex, head = extracted["extraction"], extracted["object"]
    name = obj.name
    return Document(
        id=obj.doc_id, bucket=obj.bucket, key=obj.key, folder=obj.folder, name=name,
        extension=name.rsplit(".", 1)[-1].lower() if "." in name else "",
        content_type=ex["content_type"], size=int(head.get("size") or 0),
        etag=head.get("etag"), version_id=head.get("version_id"),
        last_modified=head.get("last_modified"), order=obj.order, title=ex.get("title"),
        author=ex.get("author"), pages=ex.get("pages"), text=text, outcome=ex["outcome"],
        reason=ex.get("reason"), truncated=bool(ex.get("truncated")),
        indexed_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        metadata=ex.get("metadata") or {},
    )


@app.task(base=PipelineTask, bind=True, name="tasks.index",
          max_retries=get_settings().retries_for("index"))
def index(self: PipelineTask, extracted: dict[str, Any]) -> dict[str, Any]:
    obj = ObjectRef.from_dict(extracted.get("ref") if isinstance(extracted, dict) else None)
    text_ref = extracted.get("text_ref")
    text = claimcheck.load(text_ref) if text_ref else (extracted.get("text") or "")
    doc = build_document(obj, extracted, text)
    faults.before_index(obj)
    write = get_backend().upsert(doc)
    if text_ref:
        claimcheck.discard(text_ref)
    logger.info("indexed", extra={**obj.log_context(), "outcome": doc["outcome"],
                                  "write": write.value, "doc_id": doc["id"]})
    return {"doc_id": doc["id"], "outcome": doc["outcome"], "write": write.value}


@app.task(base=PipelineTask, bind=True, name="tasks.remove",
          max_retries=get_settings().retries_for("index"))
def remove(self: PipelineTask, ref: dict[str, Any]) -> dict[str, Any]:
    obj = ObjectRef.from_dict(ref)
    write = get_backend().delete(obj.doc_id, obj.order)
    logger.info("removed", extra={**obj.log_context(), "write": write.value})
    return {"doc_id": obj.doc_id, "write": write.value}
