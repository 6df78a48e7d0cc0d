"""Claim-check for extracted text: what does not fit in a message travels as an S3 object.

SQS caps a message at 256 KiB (1 MiB on AWS since 2025, but not on every endpoint and SDK
path), and kombu base64-encodes bodies.  Text above ``INLINE_TEXT_MAX_BYTES`` is written to the
work bucket under ``extracted/`` (expired by a lifecycle rule) and its reference passed instead.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TypedDict

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.errors import ObjectGone, ServiceUnavailable
from pipeline.provision import EXTRACTED_PREFIX
from pipeline.settings import Settings, get_settings


class TextRef(TypedDict):
    bucket: str
    key: str


def store(doc_id: str, text: str, settings: Settings | None = None) -> TextRef:
    s = settings or get_settings()
    key = f"{EXTRACTED_PREFIX}{doc_id}/{uuid.uuid4().hex}.txt"
    try:
        aws.s3(s).put_object(Bucket=s.work_bucket, Key=key, Body=text.encode("utf-8"),
                             ContentType="text/plain; charset=utf-8")
    except (ClientError, BotoCoreError) as exc:
        raise ServiceUnavailable(f"cannot store extracted text: {exc}") from exc
    return TextRef(bucket=s.work_bucket, key=key)


def load(ref: TextRef) -> str:
    """Raises ``ObjectGone`` if the text expired (re-run the file from the start)."""
    try:
        body = aws.s3().get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        if aws.error_code(exc) in ("NoSuchKey", "404"):
            raise ObjectGone(f"extracted text s3://{ref['bucket']}/{ref['key']} is gone") from exc
        raise ServiceUnavailable(f"cannot read extracted text: {exc}") from exc
    text: str = body.decode("utf-8")
    return text


def discard(ref: TextRef) -> None:
    """Best effort: the lifecycle rule removes what this misses."""
    with contextlib.suppress(ClientError, BotoCoreError):
        aws.s3().delete_object(Bucket=ref["bucket"], Key=ref["key"])
