"""boto3 clients and queue-URL lookups, configured the standard boto3 way.

Endpoints come from ``AWS_ENDPOINT_URL*`` (boto3 reads them itself); credentials from the
default chain.  Clients are cached per process (boto3 clients are thread-safe).
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

from pipeline.settings import Settings, get_settings

#: retries of the AWS SDK itself (adaptive mode backs off on throttling)
_BOTO_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"},
                      connect_timeout=5, read_timeout=30)


def _checked(settings: Settings | None) -> Settings:
    s = settings or get_settings()
    s.check_aws_endpoints()
    return s


@functools.cache
def _client(service: str, region: str, endpoint: str | None) -> Any:
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint,
                                          config=_BOTO_CONFIG)


def sqs(settings: Settings | None = None) -> Any:
    s = _checked(settings)
    return _client("sqs", s.region, s.sqs_endpoint)


def s3(settings: Settings | None = None) -> Any:
    s = _checked(settings)
    return _client("s3", s.region, s.s3_endpoint)


def sns(settings: Settings | None = None) -> Any:
    s = _checked(settings)
    return _client("sns", s.region, s.sns_endpoint)


@functools.cache
def _queue_url(name: str, region: str, endpoint: str | None) -> str:
    url: str = _client("sqs", region, endpoint).get_queue_url(QueueName=name)["QueueUrl"]
    return url


def queue_url(physical_name: str, settings: Settings | None = None) -> str:
    """URL of an existing queue (cached).

    Raises:
        botocore.exceptions.ClientError: the queue does not exist (run ``make provision``).
    """
    s = _checked(settings)
    return _queue_url(physical_name, s.region, s.sqs_endpoint)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
