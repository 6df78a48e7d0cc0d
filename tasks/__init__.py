"""The Celery app: ``celery -A tasks worker`` from the repository root.

Stages, one module each: ``fetch`` -> ``extract`` -> ``index`` (and ``remove`` for deletions).
Chains are built by ``tasks.chains.chain_for`` (the bridge and re-queue use it).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from pipeline import signing
from pipeline.logs import setup_logging
from pipeline.settings import get_settings
from tasks.heartbeat import VisibilityHeartbeat

app = Celery("filesearch")
app.config_from_object("celeryconfig")
signing.configure(app, get_settings())  # before anything sends or consumes
app.steps["consumer"].add(VisibilityHeartbeat)


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    setup_logging(get_settings().log_level)


@signals.task_received.connect
def _note_redelivery(request: Any = None, **_: Any) -> None:
    """A message received more than once means a worker died or a timeout passed: log it."""
    info = getattr(getattr(request, "message", None), "delivery_info", None) or {}
    attrs = (info.get("sqs_message") or {}).get("Attributes") or {}
    count = int(attrs.get("ApproximateReceiveCount", 1))
    if count > 1:
        logging.getLogger("tasks").warning(
            "redelivered message", extra={"task_id": request.id, "task": request.name,
                                          "receive_count": count})


@signals.task_prerun.connect
def _bind_task_context(task_id: str | None = None, **_: Any) -> None:
    from pipeline import logs

    logs.set_task_id(task_id)


@signals.task_postrun.connect
def _unbind_task_context(**_: Any) -> None:
    from pipeline import logs

    logs.set_task_id(None)


from tasks import extract, fetch, index, requeue  # noqa: E402,F401  (registers the tasks)

__all__ = ["app"]
