"""``PipelineTask``: the retry and dead-letter policy, declared once for every stage.

What happens to a message, by what its task does:

==========================  ===========================================================
task returns                next stage enqueued by this class, *then* the message is acked;
                            if enqueueing fails the message is released, never acked
``TransientError`` / other  retried as a new message delayed in SQS (exponential backoff
                            with jitter, capped below SQS's 900 s), old message acked
retries exhausted           dead-letter record written, then acked (task state FAILURE)
``PermanentError``          dead-letter record written at once, then acked
record cannot be written    ``Reject(requeue=True)``: the message stays in SQS; its
                            redrive policy moves it to the stage DLQ after
                            ``maxReceiveCount`` receives
worker killed / hard limit  not acked (``task_reject_on_worker_lost``,
                            ``task_acks_on_timeout=False``): SQS redelivers, then redrives
==========================  ===========================================================

Celery's own chain dispatch runs *after* the task and turns an enqueue failure into a FAILURE
that ``acks_on_failure`` would ack: the file would be lost.  So this class enqueues the next
stage itself, inside the task, and clears the chain it has handled.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task
from celery.canvas import Signature, signature
from celery.exceptions import Ignore, Reject, Retry

from pipeline import deadletter, metrics
from pipeline.errors import PermanentError, reason_of
from pipeline.settings import SQS_MAX_DELAY_S, get_settings

logger = logging.getLogger(__name__)

#: key of a stage result that stops the chain (the work is already done, e.g. a stale event)
DONE = "done"
#: key of a stage result that names the queue of the next stage (content-based routing)
NEXT_QUEUE = "next_queue"
#: key of a stage result that sends the *same* stage again, to another queue, with a new
#: argument (e.g. a scanned PDF moving from extract-pdf to extract-ocr); the rest of the chain
#: follows it unchanged
REROUTE = "reroute"
#: message header carrying the time of the first failure across retries
FIRST_FAILURE_HEADER = "first_failure_at"


def backoff_seconds(attempt: int, base: float, cap: int) -> int:
    """Delay before retry ``attempt`` (0-based): exponential, "equal jitter", <= ``cap``."""
    ceiling = min(float(cap), base * (2 ** attempt), float(SQS_MAX_DELAY_S))
    return max(1, round(random.uniform(ceiling / 2, ceiling)))


class PipelineTask(Task):
    """Base of every pipeline task; tasks themselves contain no retry or dead-letter code."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    typing = True

    #: retries of a transient failure; every task sets it from settings
    max_retries: int = 5

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.run(*args, **kwargs)
        except (Retry, Ignore, Reject):
            raise
        except PermanentError as exc:
            self._dead_letter(exc, args, kwargs)
            raise
        except Exception as exc:
            if self.request.retries < self.max_retries and not self.request.called_directly:
                self._retry(exc)
            self._dead_letter(exc, args, kwargs)
            raise
        self._dispatch_next(result)
        return result

    # ---- next stage ---------------------------------------------------------------------

    def _dispatch_next(self, result: Any) -> None:
        chain = self.request.chain
        self.request.chain = None  # handled here; Celery's trace must not send it again
        if isinstance(result, dict) and result.get(REROUTE):
            again = self.signature((result[REROUTE]["arg"],)).set(
                queue=result[REROUTE]["queue"])
            self._send(again, chain or None)
            return
        if not chain:
            return
        if isinstance(result, dict) and result.get(DONE):
            logger.info("chain stops: %s", result.get("why", "done"),
                        extra={"task_id": self.request.id})
            return
        self._send(signature(chain[-1], app=self.app), chain[:-1] or None, result)

    def _send(self, nxt: Signature, chain: list[Any] | None, result: Any = None) -> None:
        if isinstance(result, dict) and result.get(NEXT_QUEUE):
            nxt = nxt.clone()
            nxt.set(queue=result[NEXT_QUEUE])
        args = () if result is None else (result,)
        try:
            nxt.apply_async(args, chain=chain, parent_id=self.request.id,
                            root_id=self.request.root_id or self.request.id, retry=True)
        except Exception as exc:
            logger.error("could not enqueue %s; message released, not acked", nxt.task,
                         extra={"task_id": self.request.id, "error": repr(exc)})
            raise Reject(exc, requeue=True) from exc

    # ---- failures -----------------------------------------------------------------------

    def _retry(self, exc: Exception) -> None:
        s = get_settings()
        delay = backoff_seconds(self.request.retries, s.retry_backoff_base, s.retry_backoff_max)
        headers = {FIRST_FAILURE_HEADER: self._first_failure_at()}
        logger.warning("transient failure, retry %d/%d in %ds: %s", self.request.retries + 1,
                       self.max_retries, delay, exc,
                       extra={"task_id": self.request.id, "reason": reason_of(exc)})
        try:
            # delay_seconds: SQS holds the message, so no worker sits on an ETA task
            raise self.retry(exc=exc, countdown=0, delay_seconds=delay, headers=headers)
        except Retry:
            raise
        except Exception as publish_error:
            raise Reject(publish_error, requeue=True) from publish_error

    def _first_failure_at(self) -> str:
        headers = self.request.headers or {}
        value = headers.get(FIRST_FAILURE_HEADER) or getattr(self.request, FIRST_FAILURE_HEADER,
                                                             None)
        return str(value) if value else deadletter.utcnow()

    def _dead_letter(self, exc: BaseException, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> None:
        if self.request.called_directly:
            return
        record = deadletter.build_record(
            task=self.name, task_id=self.request.id, args=list(args), kwargs=kwargs, exc=exc,
            attempts=self.request.retries + 1, first_failure_at=self._first_failure_at(),
            worker=self.request.hostname, queue=(self.request.delivery_info or {}).get(
                "routing_key"), chain=self.request.chain)
        try:
            deadletter.send(record)
        except Exception as send_error:
            logger.error("could not write dead-letter record; message released, not acked",
                         extra={"task_id": self.request.id, "error": repr(send_error)})
            raise Reject(send_error, requeue=True) from send_error
        metrics.record_dead_letter(self.name, record["reason"])
        logger.error("dead-lettered: %s", record["reason"],
                     extra={"task_id": self.request.id, "dead_letter_id": record["id"],
                            **record.get("object", {})})
