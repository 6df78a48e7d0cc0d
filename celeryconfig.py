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

Monitoring (docs/monitoring.md): ``broker.transport:Transport`` adds fanout exchanges on SNS, so
task events reach Flower and ``celery inspect`` / remote control work.  The event and control
exchanges carry the queue prefix, so deployments sharing an AWS account do not see each
other's events or broadcasts.
"""

from __future__ import annotations

from kombu import Queue

# imported here because ``celery -A tasks`` only has the working directory on sys.path while
# it imports the app; kombu resolves ``broker_transport`` later, by name
import broker.transport  # noqa: F401
from pipeline import aws
from pipeline.settings import STAGE_QUEUES, get_settings

_settings = get_settings()
#: SNS topic names of the event and remote-control exchanges (one set per queue prefix)
_event_exchange = f"{_settings.queue_prefix}celeryev"

broker_url = "sqs://"
#: kombu's SQS transport plus events / remote control over SNS (see broker/transport.py)
broker_transport = "broker.transport:Transport"
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
    # ---- broker.transport: fanout on SNS, dynamic event/reply/mailbox queues ----
    "supports_fanout": True,
    "fanout_exchanges": [_event_exchange],
    "dynamic_queue_prefix": _settings.queue_prefix,
    "event_queue_prefix": "celeryev",
    #: seconds a message stays in an event/reply/mailbox queue nobody reads
    "dynamic_queue_retention": 300,
    #: seconds between owner heartbeats on dynamic queues (the sweep removes stale ones)
    "dynamic_queue_heartbeat": 60,
    #: counts DeleteMessage outcomes (acks) per queue
    "delete_observer": "pipeline.metrics:record_sqs_delete",
}

task_queues = [Queue(name) for name in STAGE_QUEUES]
task_default_queue = "fetch"
task_create_missing_queues = False
task_routes = {
    "tasks.fetch": {"queue": "fetch"},
    "tasks.extract": {"queue": "extract-other"},
    "tasks.index": {"queue": "index"},
    "tasks.remove": {"queue": "index"},
    # operator tasks (celery call): cheap, on the fetch queue every worker consumes
    "tasks.requeue": {"queue": "fetch"},
    "tasks.reprocess": {"queue": "fetch"},
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

# ---- events and remote control (Flower, celery inspect); docs/monitoring.md ----
worker_enable_remote_control = True
worker_send_task_events = _settings.task_events
#: no "task-sent" event: every producer (the bridge for each chain, each stage for the next)
#: would publish one; Flower still sees received/started/succeeded/failed from the workers
task_send_sent_event = False
event_exchange = _event_exchange
event_queue_prefix = "celeryev"
control_exchange = f"{_settings.queue_prefix}celery"

#: refused messages (bad signature, pickle, unknown task ...) are dead-lettered before the ack
worker_consumer = "tasks.consumer:Consumer"
