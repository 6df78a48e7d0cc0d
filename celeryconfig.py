"""Celery configuration; reads only from ``pipeline.settings`` (see docs/configuration.md).

Why each reliability setting is what it is (the incident this project ends):
- ``task_acks_late``: a message is deleted only after its task finished and its outcome is
  durable (next stage enqueued, document indexed, or dead-letter record written).
- ``task_acks_on_failure``: True because every failure inside a task is handled by
  ``tasks.base.PipelineTask`` (retried as a new message, or dead-lettered) before it surfaces;
  a failure it could not record raises ``Reject(requeue=True)`` and is not acked.
- ``task_acks_on_timeout`` False and ``task_reject_on_worker_lost``: a hard timeout or a dead
  pool process leaves the message in SQS, which redelivers it and, after ``maxReceiveCount``,
  moves it to the stage's DLQ (the redrive policy is the crash safety net).
- ``worker_prefetch_multiplier=1``: a worker holds no message it is not about to run.
"""

from __future__ import annotations

from kombu import Queue

from pipeline import aws
from pipeline.settings import STAGE_QUEUES, get_settings

_settings = get_settings()

broker_url = "sqs://"
broker_connection_retry_on_startup = True
broker_transport_options = {
    "region": _settings.region,
    "predefined_queues": {
        logical: {"url": aws.queue_url(_settings.queue_name(logical), _settings)}
        for logical in STAGE_QUEUES
    },
    #: seconds of server-side long poll per receive; short, since one worker polls its queues
    #: in turn and a long wait on an idle queue would delay the busy ones
    "wait_time_seconds": _settings.worker_wait_time_seconds,
    #: seconds of client-side sleep after an empty poll; 0: the long poll already waited
    "polling_interval": 0,
    "visibility_timeout": _settings.visibility_timeout,
}

task_queues = [Queue(name) for name in STAGE_QUEUES]
task_default_queue = "fetch"
task_create_missing_queues = False
task_routes = {
    "tasks.fetch": {"queue": "fetch"},
    "tasks.extract": {"queue": "extract-other"},
    "tasks.index": {"queue": "index"},
    "tasks.remove": {"queue": "index"},
}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"
result_accept_content = ["json"]
task_ignore_result = True
result_backend = None

task_acks_late = True
task_acks_on_failure = True
task_acks_on_timeout = False
task_reject_on_worker_lost = True
task_time_limit = _settings.task_time_limit
task_soft_time_limit = _settings.task_soft_time_limit
worker_prefetch_multiplier = 1
worker_concurrency = _settings.worker_concurrency
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = True
worker_enable_remote_control = False
