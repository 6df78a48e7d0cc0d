"""``tasks.requeue``: re-run dead letters from a worker, with the same code as ``pipeline.dlq``.

    celery -A tasks call tasks.requeue --kwargs '{"id": "<record id>"}'
    celery -A tasks call tasks.requeue --kwargs '{"reason": "index-unavailable",
        "prefix": "reports/", "older_than": "2h", "queue": "all"}'

Runs on the ``fetch`` queue: ``task_default_queue`` routes it there (a ``queue`` task attribute
is deprecated in Celery 5.x and ignored from 6.0).  Not acked late: if the worker dies mid-run
the leased dead letters simply reappear after their lease.  There is no result backend: the
summary is returned (to ``apply()`` callers, and shown by Flower) and logged by the worker.
Also home of ``celery_dispatch``, the Celery side of re-queueing a dead-letter record.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery

from pipeline import dlq
from pipeline.objects import ObjectRef
from tasks import app

logger = logging.getLogger(__name__)


def celery_dispatch(on: Celery | None = None) -> dlq.Dispatch:
    """A dispatch that enqueues ``chain_for(ref)`` (raises if the broker did not take it).

    With ``on`` the chain is sent through that app (its broker and queue URLs) instead of the
    process-wide ``tasks.app``: the signature goes through a plain dict, which rebinds every step.
    """

    def dispatch(ref: ObjectRef) -> None:
        from tasks.chains import chain_for

        sig = chain_for(ref)
        if on is not None:
            sig = on.signature(json.loads(json.dumps(sig)))
        sig.apply_async(retry=True)

    return dispatch


@app.task(name="tasks.requeue", acks_late=False)
def requeue(id: str | None = None, ids: list[str] | None = None, all: bool = False,
            reason: str | None = None, error_class: str | None = None,
            prefix: str | None = None, older_than: str | None = None, queue: str = dlq.ALL,
            dry_run: bool = False) -> dict[str, Any]:
    """Re-queue the dead letters named by ``id``/``ids``, or matching the filters (or ``all``).

    Raises:
        ValueError: nothing selected (no id, no filter, not ``all``), a bad ``older_than`` or
            an unknown ``queue``.
    """
    filters = dlq.Filters(
        ids=tuple(([id] if id else []) + list(ids or [])), reason=reason,
        error_class=error_class, prefix=prefix,
        older_than=dlq.parse_duration(older_than) if older_than else None)
    summary = dlq.requeue(None, filters, queue, everything=all, dry_run=dry_run,
                          dispatch=celery_dispatch())
    logger.info("requeue: %s", json.dumps(summary["counts"]),
                extra={"moved": [m["id"] for m in summary["moved"]],
                       "not_found": summary["not_found"]})
    return dict(summary)


@app.task(name="tasks.reprocess", acks_late=False)
def reprocess(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    """Run the whole chain for one object again, by hand:

        celery -A tasks call tasks.reprocess --kwargs '{"bucket": "b", "key": "some/key.pdf"}'

    The event carries no order, so its write replaces what the index holds (last writer wins).
    """
    ref = ObjectRef(bucket=bucket, key=key, version_id=version_id,
                    event_name="ObjectCreated:Reprocess")
    celery_dispatch()(ref)
    logger.info("reprocess enqueued", extra=ref.log_context())
    return {"enqueued": ref.to_dict()}
