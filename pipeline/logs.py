"""Structured logs: one JSON object per line, carrying bucket/key/version and task id."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from pipeline.redact import RedactingFilter

#: LogRecord attributes that are not "extra" context
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)


def set_task_id(task_id: str | None) -> None:
    """Tag every log line of the current task with its id (set by Celery signals)."""
    _task_id.set(task_id)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra={...}`` keys become top-level fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        task_id = _task_id.get()
        if task_id:
            entry["task_id"] = task_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        data = entry.get("data")
        if isinstance(data, dict):  # Celery's own task logs: keep ids, not argument dumps
            entry["data"] = {k: data[k] for k in ("id", "name", "runtime") if k in data}
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON lines; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_filesearch", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())  # no credentials or presigned URLs in logs
    handler._filesearch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
