"""The CloudFormation template: valid, rendered from the code, and equal to what provisioning makes.

- every template in infra/ passes ``cfn-lint``;
- the committed template is exactly what ``python -m infra.render`` renders now;
- every queue of ``queue_specs(Settings())`` is in the template with the same attributes and
  redrive policy, and nothing else is;
- against the local endpoint, what ``pipeline.provision`` creates (queue attributes, redrive,
  events queue policy, notification, lifecycle rule) equals the template resolved with the
  same names;
- each IAM policy grants exactly the expected (action, resource) pairs: a least-privilege
  allow-list written here independently of infra/iam.py, no ``*`` action, and
  ``Resource: "*"`` only for the two list actions AWS offers no resource-level permission for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kombu.transport.SQS import Channel

from infra import iam, render
from pipeline import aws
from pipeline.provision import EXTRACTED_EXPIRY_DAYS, EXTRACTED_PREFIX, queue_specs
from pipeline.settings import STAGE_QUEUES, Settings
from tests.support import unavailable

INFRA = Path(render.__file__).resolve().parent
TEMPLATES = sorted([*INFRA.glob("*.yaml"), *INFRA.glob("*.yml"), *INFRA.glob("*.json")])
REGION, ACCOUNT = "us-east-1", "123456789012"


def load(path: Path = render.TEMPLATE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


# ---- resolving the template with concrete parameter values ----------------------------------


class Resolved:
    """The template with every Ref/GetAtt/Sub evaluated for the given parameter values."""

    def __init__(self, template: dict[str, Any], **params: str) -> None:
        self.t = template
        self.params = {k: v["Default"] for k, v in template["Parameters"].items()} | params
        self.params |= {"AWS::Partition": "aws", "AWS::Region": REGION,
                        "AWS::AccountId": ACCOUNT}
        self.resources: dict[str, Any] = template["Resources"]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def arn_of(self, logical_id: str) -> str:
        res = self.resources[logical_id]
        if res["Type"] == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.value(res['Properties']['QueueName'])}"
        if res["Type"] == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.value(res['Properties']['TopicName'])}"
        raise AssertionError(f"no ARN for {logical_id}")

    def value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.params[arg] if arg in self.params else self.arn_of(arg)
            if fn == "Fn::GetAtt":
                assert arg[1] == "Arn", arg
                return self.arn_of(arg[0])
            if fn == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.value(
                    {"Fn::GetAtt": m.group(1).split(".")} if "." in m.group(1)
                    else {"Ref": m.group(1)})), arg)
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        return node

    def queues(self) -> dict[str, dict[str, Any]]:
        """Queue name -> its resolved properties."""
        return {self.value(q["Properties"]["QueueName"]): self.value(q["Properties"])
                for q in self.of_type("AWS::SQS::Queue").values()}


def short(arn: str) -> str:
    """``arn:aws:sqs:us-east-1:123:filesearch-fetch`` -> ``sqs:filesearch-fetch``."""
    parts = arn.split(":", 5)
    assert parts[0] == "arn" and parts[1] == "aws", arn
    return f"{parts[2]}:{parts[5]}"


# ---- lint and freshness ---------------------------------------------------------------------


def test_cfn_lint_passes_on_every_template() -> None:
    exe = Path(sys.executable).with_name("cfn-lint")
    cfn_lint = str(exe) if exe.exists() else shutil.which("cfn-lint")
    if cfn_lint is None:
        unavailable("cfn-lint is not installed (pip install -r requirements-dev.txt)")
    assert TEMPLATES, "no template in infra/"
    result = subprocess.run([cfn_lint, "--", *map(str, TEMPLATES)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_template_is_what_the_code_renders() -> None:
    assert render.TEMPLATE.read_text() == render.render(), \
        "infra/filesearch.yaml is stale: run python -m infra.render and commit it"


# ---- queues ---------------------------------------------------------------------------------


def test_every_queue_of_the_provisioning_code_is_in_the_template_with_its_attributes() -> None:
    settings = Settings()
    specs = queue_specs(settings)
    queues = Resolved(load()).queues()

    assert sorted(queues) == sorted(s.name for s in specs), "queues differ from queue_specs"
    for spec in specs:
        props = queues[spec.name]
        for attribute, value in spec.attributes.items():
            assert str(props.get(attribute)) == value, (spec.name, attribute)
        if spec.dlq:
            redrive = props["RedrivePolicy"]
            assert short(redrive["deadLetterTargetArn"]) == f"sqs:{spec.dlq}", spec.name
            assert redrive["maxReceiveCount"] == settings.max_receive_count, spec.name
        else:
            assert "RedrivePolicy" not in props, spec.name
    stage = queues[settings.queue_name("fetch")]
    assert stage["VisibilityTimeout"] == settings.visibility_timeout


def test_topics_are_named_as_kombu_names_them() -> None:
    resolved = Resolved(load(), QueuePrefix="filesearch-")
    topics = {resolved.value(t["Properties"]["TopicName"])
              for t in resolved.of_type("AWS::SNS::Topic").values()}
    assert topics == {Channel.entity_name(None, f"filesearch-{e}")  # type: ignore[arg-type]
                      for e in iam.FANOUT_EXCHANGES}
    assert topics == {"filesearch-celeryev", "filesearch-celery-pidbox"}


def test_upload_bucket_notification_waits_for_the_queue_policy() -> None:
    t = load()
    bucket = t["Resources"][render.UPLOAD_BUCKET_ID]
    policy_ids = [k for k, v in t["Resources"].items() if v["Type"] == "AWS::SQS::QueuePolicy"]
    assert policy_ids and set(policy_ids) <= set(bucket["DependsOn"])


@pytest.mark.wire
def test_template_equals_what_provisioning_creates(isolated: Settings) -> None:
    # Given resources created by pipeline.provision, and the template resolved with the
    # same names
    s = isolated
    resolved = Resolved(load(), QueuePrefix=s.queue_prefix, UploadBucket=s.upload_bucket,
                        WorkBucket=s.work_bucket)
    sqs, s3 = aws.sqs(s), aws.s3(s)

    # Then every queue has the template's attributes and redrive policy
    template_queues = resolved.queues()
    for spec in queue_specs(s):
        url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
        live = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        props = template_queues[spec.name]
        for attribute in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if attribute in props:
                assert live[attribute] == str(props[attribute]), (spec.name, attribute)
        if spec.dlq:
            redrive = json.loads(live["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"].rsplit(":", 1)[1] == short(
                props["RedrivePolicy"]["deadLetterTargetArn"]).split(":", 1)[1]
            assert int(redrive["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]
        if spec.logical == "events":
            live_policy = json.loads(live["Policy"])
            (template_policy,) = [p["Properties"]["PolicyDocument"] for p in
                                  resolved.of_type("AWS::SQS::QueuePolicy").values()]
            want = resolved.value(template_policy)
            for a, b in zip(live_policy["Statement"], want["Statement"], strict=True):
                assert a["Action"] == b["Action"] and a["Principal"] == b["Principal"]
                assert a["Condition"] == b["Condition"]
                assert a["Resource"].rsplit(":", 1)[1] == b["Resource"].rsplit(":", 1)[1]

    # And the work bucket's lifecycle rule is the template's
    rules = s3.get_bucket_lifecycle_configuration(Bucket=s.work_bucket)["Rules"]
    (t_rule,) = resolved.value(resolved.resources[render.WORK_BUCKET_ID]["Properties"][
        "LifecycleConfiguration"]["Rules"])
    (rule,) = [r for r in rules if r["ID"] == t_rule["Id"]]
    assert rule["Filter"]["Prefix"] == t_rule["Prefix"] == EXTRACTED_PREFIX
    assert rule["Expiration"]["Days"] == t_rule["ExpirationInDays"] == EXTRACTED_EXPIRY_DAYS

    # And the upload bucket notifies the events queue of the template's events
    config = s3.get_bucket_notification_configuration(Bucket=s.upload_bucket)
    live_events = sorted(e for q in config["QueueConfigurations"] for e in q["Events"])
    notification = resolved.value(resolved.resources[render.UPLOAD_BUCKET_ID]["Properties"][
        "NotificationConfiguration"])
    assert live_events == sorted(q["Event"] for q in notification["QueueConfigurations"])
    assert {q["QueueArn"].rsplit(":", 1)[1] for q in config["QueueConfigurations"]} == \
        {q["Queue"].rsplit(":", 1)[1] for q in notification["QueueConfigurations"]} == \
        {s.queue_name("events")}


# ---- IAM: least privilege -------------------------------------------------------------------

S = Settings()


def q(*logical: str) -> list[str]:
    return [f"sqs:{S.queue_name(name)}" for name in logical]


def dlq(*logical: str) -> list[str]:
    return [f"sqs:{S.dlq_name(name)}" for name in logical]


STAGES = STAGE_QUEUES
EXTRACTS = tuple(name for name in STAGES if name.startswith("extract-"))
UPLOADED = [f"s3:{S.upload_bucket}/*"]
EXTRACTED = [f"s3:{S.work_bucket}/extracted/*"]
EVENTS_TOPIC = [f"sns:{S.queue_prefix}celeryev"]
CONTROL_TOPIC = [f"sns:{S.queue_prefix}celery-pidbox"]
MAILBOXES = [f"sqs:{S.queue_prefix}pidbox-*"]
REPLIES = [f"sqs:{S.queue_prefix}reply-*"]
RECEIVERS = [f"sqs:{S.queue_prefix}ev-*"]
ANY = ["*"]
DYNAMIC = ("sqs:CreateQueue", "sqs:TagQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
           "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteQueue")
SUBSCRIBE = ("sns:CreateTopic", "sns:TagResource", "sns:ListSubscriptionsByTopic",
             "sns:Subscribe", "sns:Unsubscribe")
PUBLISH = ("sns:CreateTopic", "sns:TagResource", "sns:Publish")


def pairs(actions: tuple[str, ...] | str, resources: list[str]) -> set[tuple[str, str]]:
    acts = (actions,) if isinstance(actions, str) else actions
    return {(a, r) for a in acts for r in resources}


SWEEP = (pairs("sqs:ListQueues", ANY) | pairs("sns:ListSubscriptions", ANY)
         | pairs(("sqs:ListQueueTags", "sqs:GetQueueUrl", "sqs:DeleteQueue"),
                 [*RECEIVERS, *MAILBOXES, *REPLIES])
         | pairs("sns:Unsubscribe", [*EVENTS_TOPIC, *CONTROL_TOPIC]))


def worker(stage: str, nxt: tuple[str, ...], objects: set[tuple[str, str]]) -> \
        set[tuple[str, str]]:
    return (pairs(("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                   "sqs:GetQueueAttributes", "sqs:SendMessage"), q(stage))
            | pairs("sqs:SendMessage", q(*nxt))
            | pairs(("sqs:SendMessage", "sqs:GetQueueUrl"), q("dead-letter"))
            | pairs("sqs:GetQueueUrl", q(*STAGES)) | objects
            | pairs(PUBLISH, EVENTS_TOPIC)
            | pairs(SUBSCRIBE, CONTROL_TOPIC)
            | pairs((*DYNAMIC, "sqs:SetQueueAttributes"), MAILBOXES)
            | pairs(("sqs:GetQueueUrl", "sqs:SendMessage"), REPLIES)
            | SWEEP)


READ_UPLOADED = pairs(("s3:GetObject", "s3:GetObjectVersion"), UPLOADED)
#: policy -> exactly the (action, resource) pairs it may grant; see docs/iam.md for why
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "BridgePolicy": (pairs(("sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"),
                           q("events"))
                     | pairs(("sqs:GetQueueUrl", "sqs:SendMessage"), dlq("events"))
                     | pairs("sqs:SendMessage", q("fetch", "index"))
                     | pairs("sqs:GetQueueUrl", q(*STAGES))
                     | pairs(PUBLISH, EVENTS_TOPIC)),
    "WorkerFetchPolicy": worker("fetch", EXTRACTS, READ_UPLOADED),
    **{f"Worker{name.title().replace('-', '')}Policy": worker(
        name, ("extract-ocr", "index") if name == "extract-pdf" else ("index",),
        READ_UPLOADED | pairs("s3:PutObject", EXTRACTED)) for name in EXTRACTS},
    "WorkerIndexPolicy": worker("index", (), pairs(("s3:GetObject", "s3:DeleteObject"),
                                                   EXTRACTED)),
    "FlowerPolicy": (pairs("sqs:GetQueueUrl", q(*STAGES))
                     | pairs(SUBSCRIBE, EVENTS_TOPIC)
                     | pairs((*DYNAMIC, "sqs:SetQueueAttributes"), RECEIVERS)
                     | pairs(PUBLISH, CONTROL_TOPIC)
                     | pairs(DYNAMIC, REPLIES) | SWEEP),
    "OperatorRequeuePolicy": (pairs(("sqs:GetQueueUrl", "sqs:ReceiveMessage",
                                     "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"),
                                    [*dlq("events", *STAGES), *q("dead-letter")])
                              | pairs(("sqs:GetQueueUrl", "sqs:SendMessage"),
                                      q("events", *STAGES))
                              | pairs(PUBLISH, EVENTS_TOPIC)),
}
#: actions any process kind may ever hold; anything else is a review finding
ALLOWED_ACTIONS = {
    "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage",
    "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
    "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:TagQueue", "sqs:ListQueueTags",
    "sqs:ListQueues", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject",
    "s3:DeleteObject", "sns:Publish", "sns:Subscribe", "sns:Unsubscribe", "sns:CreateTopic",
    "sns:TagResource", "sns:ListSubscriptionsByTopic", "sns:ListSubscriptions",
}
#: only queues named at run time (event, mailbox, reply) may be created, deleted or re-policied
DYNAMIC_ONLY = {"sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes",
                "sqs:TagQueue"}
#: the only actions AWS offers no resource-level permission for, so "*" is required
NO_RESOURCE_LEVEL = {"sqs:ListQueues", "sns:ListSubscriptions"}


def granted() -> dict[str, set[tuple[str, str]]]:
    resolved = Resolved(load())
    out: dict[str, set[tuple[str, str]]] = {}
    for logical_id, policy in resolved.of_type("AWS::IAM::ManagedPolicy").items():
        found: set[tuple[str, str]] = set()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert st["Effect"] == "Allow" and set(st) == {"Sid", "Effect", "Action",
                                                            "Resource"}, st
            assert "*" not in json.dumps(st["Action"]), f"{logical_id}: wildcard action"
            raw = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            if "*" in raw:
                assert raw == ["*"] and set(st["Action"]) <= NO_RESOURCE_LEVEL, \
                    f"{logical_id}: Resource '*' for {st['Action']}"
            for resource in resolved.value(raw):
                found |= pairs(tuple(st["Action"]), [resource if resource == "*"
                                                     else short(resource)])
        out[logical_id] = found
    return out


def test_one_policy_per_process_kind() -> None:
    assert set(granted()) == set(EXPECTED)


@pytest.mark.parametrize("policy", sorted(EXPECTED))
def test_policy_grants_exactly_what_the_process_uses(policy: str) -> None:
    got = granted()[policy]
    assert {a for a, _ in got} <= ALLOWED_ACTIONS
    for action, resource in got:
        if action in DYNAMIC_ONLY:
            assert resource in (*MAILBOXES, *REPLIES, *RECEIVERS), (action, resource)
    assert got - EXPECTED[policy] == set(), f"{policy} grants more than it uses"
    assert EXPECTED[policy] - got == set(), f"{policy} lacks a permission its process uses"


def test_no_policy_names_a_resource_outside_this_deployment() -> None:
    for policy, got in granted().items():
        for action, resource in got:
            if resource == "*":
                assert action in NO_RESOURCE_LEVEL
                continue
            name = resource.split(":", 1)[1]
            assert name.startswith((S.queue_prefix, f"{S.upload_bucket}/",
                                    f"{S.work_bucket}/")), (policy, resource)
