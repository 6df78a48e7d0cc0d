"""Least-privilege IAM policies, one per process kind, as data (rendered by ``infra.render``).

Each grant names the exact actions a process calls and the resources it calls them on, by
*logical* name (``queue("fetch")``, ``OBJECTS_UPLOAD`` ...); ``infra.render`` turns the names
into CloudFormation ARNs.  Why each action is there: docs/iam.md (keep both in step;
``tests/test_infra.py`` holds an independent copy of the expected permissions).

Batch APIs are authorized by their single-message action (``DeleteMessageBatch`` by
``sqs:DeleteMessage``, ``ChangeMessageVisibilityBatch`` by ``sqs:ChangeMessageVisibility``);
``HeadObject`` by ``s3:GetObject`` (``s3:GetObjectVersion`` when a version id is given).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from broker.naming import EVENTS, PIDBOX, REPLY
from pipeline.settings import DEAD_LETTER_QUEUE, EVENTS_QUEUE, STAGE_QUEUES

# ---- Celery events and remote control over SNS (broker.transport) --------------------------
#: THE list of Celery fanout exchanges that kombu's SQS transport maps onto SNS topics, after
#: the deployment's prefix: celeryconfig's ``event_exchange`` (``<QUEUE_PREFIX>celeryev``) and
#: the pidbox exchange of its ``control_exchange`` (``<QUEUE_PREFIX>celery`` + ``.pidbox``).
#: kombu names a topic ``entity_name(exchange)`` (``.`` -> ``-``, other punctuation but ``-_``
#: -> ``_``; kombu/transport/SQS/SNS.py ``_create_sns_topic``).  Change them here only.
FANOUT_EXCHANGES: tuple[str, ...] = ("celeryev", "celery.pidbox")
EVENTS_EXCHANGE, CONTROL_EXCHANGE = FANOUT_EXCHANGES
#: tags kombu puts on the topics it creates; the template sets the same ones, because kombu
#: finds a topic's ARN with CreateTopic, which AWS answers for an existing topic only if the
#: tags are identical
KOMBU_TOPIC_TAGS: tuple[tuple[str, str], ...] = (
    ("ManagedBy", "Celery/Kombu"),
    ("Description", "This SNS topic is used by Kombu to enable Fanout support for AWS SQS."),
)
#: queues ``broker.transport`` creates at run time, as name patterns after QUEUE_PREFIX (see
#: ``broker.naming``): an event monitor's queue (Flower), a worker's mailbox, the reply queue
#: of a control/inspect client
EVENT_RECEIVER_QUEUES = f"{EVENTS}-*"
PIDBOX_QUEUES = f"{PIDBOX}-*"
REPLY_QUEUES = f"{REPLY}-*"


def topic_name(prefix: str, exchange: str) -> str:
    """The SNS topic kombu uses for a fanout ``exchange`` (mirrors kombu's ``entity_name``).

    Only the exchange is translated: a QUEUE_PREFIX holds nothing kombu would change
    (the template's ``AllowedPattern`` is ``[A-Za-z0-9_-]``), and ``prefix`` may be a
    ``${QueuePrefix}`` placeholder.
    """
    table = {ord(c): "_" for c in string.punctuation if c not in "-_."}
    table[ord(".")] = "-"
    return prefix + exchange.translate(table)


# ---- resources, by logical name ------------------------------------------------------------


@dataclass(frozen=True)
class Res:
    """A resource a grant names: ``kind`` is queue, dynamic-queues, topic, objects or any.

    ``any`` ("*") only for actions without resource-level permissions (ListQueues,
    ListSubscriptions).
    """

    kind: str
    name: str


def queue(logical: str) -> Res:
    return Res("queue", logical)


def queues(*logical: str) -> tuple[Res, ...]:
    return tuple(queue(q) for q in logical)


def topic(exchange: str) -> Res:
    return Res("topic", exchange)


def dynamic_queues(pattern: str) -> Res:
    return Res("dynamic-queues", pattern)


#: objects of the upload bucket, and the claim-check prefix of the work bucket
OBJECTS_UPLOAD = Res("objects", "upload")
OBJECTS_EXTRACTED = Res("objects", "work-extracted")

STAGES = queues(*STAGE_QUEUES)
DLQS = queues(*(f"{q}-dlq" for q in (EVENTS_QUEUE, *STAGE_QUEUES)), DEAD_LETTER_QUEUE)


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[Res, ...]


@dataclass(frozen=True)
class Policy:
    """One managed policy: attach it to the role of one process kind."""

    logical_id: str
    description: str
    grants: tuple[Grant, ...]


#: celeryconfig.py resolves the URL of every stage queue when it is imported
RESOLVE_STAGE_QUEUES = Grant("ResolveStageQueueUrls", ("sqs:GetQueueUrl",), STAGES)
WRITE_DEAD_LETTERS = Grant("WriteDeadLetterRecords", ("sqs:GetQueueUrl", "sqs:SendMessage"),
                           (queue(DEAD_LETTER_QUEUE),))
#: kombu finds a topic's ARN by CreateTopic (with its tags), then publishes: task events of
#: workers, and ``task-sent`` events of every process that sends tasks (task_send_sent_event)
PUBLISH_TASK_EVENTS = Grant("PublishTaskEvents",
                            ("sns:CreateTopic", "sns:TagResource", "sns:Publish"),
                            (topic(EVENTS_EXCHANGE),))
#: every queue the transport creates is tagged with its owner and a heartbeat
DYNAMIC_QUEUE = ("sqs:CreateQueue", "sqs:TagQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
                 "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteQueue")
#: ... and one subscribed to a topic also gets a queue policy letting SNS deliver to it
SUBSCRIBED_QUEUE = (*DYNAMIC_QUEUE, "sqs:SetQueueAttributes")
#: binding a queue to a fanout exchange: find the topic, drop subscriptions of vanished
#: queues (ListSubscriptionsByTopic + GetQueueUrl), subscribe; unsubscribe when done
SUBSCRIBE = ("sns:CreateTopic", "sns:TagResource", "sns:ListSubscriptionsByTopic",
             "sns:Subscribe", "sns:Unsubscribe")
REMOTE_CONTROL = (
    Grant("ReceiveControlCommands", SUBSCRIBE, (topic(CONTROL_EXCHANGE),)),
    Grant("OwnMailboxQueue", SUBSCRIBED_QUEUE, (dynamic_queues(PIDBOX_QUEUES),)),
    Grant("ReplyToControlCommands", ("sqs:GetQueueUrl", "sqs:SendMessage"),
          (dynamic_queues(REPLY_QUEUES),)),
)
#: ``broker.sweep``, which the transport runs once in the background when a process creates
#: its first dynamic queue: orphaned dynamic queues and their subscriptions are removed.
#: ListQueues and ListSubscriptions have no resource-level permissions: AWS requires "*"
SWEEP = (
    Grant("ListQueuesForSweep", ("sqs:ListQueues",), (Res("any", "*"),)),
    Grant("ListSubscriptionsForSweep", ("sns:ListSubscriptions",), (Res("any", "*"),)),
    Grant("SweepOrphanedDynamicQueues",
          ("sqs:ListQueueTags", "sqs:GetQueueUrl", "sqs:DeleteQueue"),
          tuple(dynamic_queues(p) for p in (EVENT_RECEIVER_QUEUES, PIDBOX_QUEUES,
                                            REPLY_QUEUES))),
    Grant("SweepOrphanedSubscriptions", ("sns:Unsubscribe",),
          tuple(topic(e) for e in FANOUT_EXCHANGES)),
)

#: the extract queues (one per kind of file: pdf, ocr, other ...)
EXTRACT_QUEUES = tuple(q for q in STAGE_QUEUES if q.startswith("extract-"))
#: extract queues that may hand a file on to another extract queue (``tasks.base.REROUTE``:
#: a scanned PDF goes from extract-pdf to extract-ocr)
REROUTES: dict[str, tuple[str, ...]] = {
    "extract-pdf": tuple(q for q in EXTRACT_QUEUES if q == "extract-ocr"),
}


def next_queues(stage: str) -> tuple[str, ...]:
    """The queues a stage's tasks enqueue next (besides retries on their own queue).

    fetch routes each file to the extract queue of its type; extraction goes to index (or is
    re-routed); index ends the chain.
    """
    if stage == "fetch":
        return EXTRACT_QUEUES
    if stage in EXTRACT_QUEUES:
        return (*REROUTES.get(stage, ()), "index")
    return ()


def stage_objects(stage: str) -> tuple[Grant, ...]:
    """S3 access of each stage."""
    read_uploaded = Grant("ReadUploadedObjects", ("s3:GetObject", "s3:GetObjectVersion"),
                          (OBJECTS_UPLOAD,))
    if stage == "fetch":  # HEAD + ranged GET of the first bytes (with the event's version id)
        return (read_uploaded,)
    if stage in EXTRACT_QUEUES:  # download, then claim-check large text
        return (read_uploaded,
                Grant("WriteExtractedText", ("s3:PutObject",), (OBJECTS_EXTRACTED,)))
    # index: read the claim-checked text, then discard it
    return (Grant("ReadAndDiscardExtractedText", ("s3:GetObject", "s3:DeleteObject"),
                  (OBJECTS_EXTRACTED,)),)


def _camel(logical: str) -> str:
    return "".join(part.capitalize() for part in logical.replace("_", "-").split("-"))


def worker_policy(stage: str) -> Policy:
    """A worker consuming one stage queue (``celery worker --queues <stage>``)."""
    consume = Grant("ConsumeOwnQueue", (
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes", "sqs:SendMessage"), (queue(stage),))
    grants = [consume]
    if next_queues(stage):
        grants.append(Grant("EnqueueNextStage", ("sqs:SendMessage",),
                            queues(*next_queues(stage))))
    grants += [WRITE_DEAD_LETTERS, RESOLVE_STAGE_QUEUES, *stage_objects(stage),
               PUBLISH_TASK_EVENTS, *REMOTE_CONTROL, *SWEEP]
    return Policy(f"Worker{_camel(stage)}Policy",
                  f"filesearch worker of the {stage} queue", tuple(grants))


def policies() -> tuple[Policy, ...]:
    """Every process kind's policy, in a stable order."""
    bridge = Policy("BridgePolicy", "filesearch bridge: S3 events queue -> Celery chains", (
        Grant("ConsumeEvents", ("sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"),
              (queue(EVENTS_QUEUE),)),
        Grant("DeadLetterMalformedEvents", ("sqs:GetQueueUrl", "sqs:SendMessage"),
              (queue(f"{EVENTS_QUEUE}-dlq"),)),
        # a created object starts at fetch; a removed one goes straight to index (tasks.remove)
        Grant("StartChains", ("sqs:SendMessage",), queues("fetch", "index")),
        RESOLVE_STAGE_QUEUES,
        PUBLISH_TASK_EVENTS,
    ))
    flower = Policy("FlowerPolicy", "filesearch Flower: task events and remote control", (
        RESOLVE_STAGE_QUEUES,
        Grant("SubscribeToTaskEvents", SUBSCRIBE, (topic(EVENTS_EXCHANGE),)),
        Grant("OwnEventReceiverQueue", SUBSCRIBED_QUEUE,
              (dynamic_queues(EVENT_RECEIVER_QUEUES),)),
        Grant("SendControlCommands", ("sns:CreateTopic", "sns:TagResource", "sns:Publish"),
              (topic(CONTROL_EXCHANGE),)),
        Grant("OwnReplyQueue", DYNAMIC_QUEUE, (dynamic_queues(REPLY_QUEUES),)),
        *SWEEP,
    ))
    operator = Policy("OperatorRequeuePolicy",
                      "filesearch operator: python -m pipeline.dlq list/show/requeue/purge", (
        Grant("LeaseDeadLetters", ("sqs:GetQueueUrl", "sqs:ReceiveMessage",
                                   "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"), DLQS),
        Grant("ResendToSourceQueues", ("sqs:GetQueueUrl", "sqs:SendMessage"),
              queues(EVENTS_QUEUE, *STAGE_QUEUES)),
        PUBLISH_TASK_EVENTS,
    ))
    return (bridge, *(worker_policy(stage) for stage in STAGE_QUEUES), flower, operator)
