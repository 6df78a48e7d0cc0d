"""Reading objects from S3 with errors mapped onto the pipeline's error tree."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.errors import (
    BucketNotAllowed,
    FileTooLarge,
    ObjectGone,
    PipelineError,
    ServiceUnavailable,
    ThrottledError,
)
from pipeline.objects import ObjectRef
from pipeline.settings import Settings, get_settings

#: bytes read from the start of an object to detect its type
HEAD_BYTES = 8192
#: bytes per read while streaming an object to disk
CHUNK_BYTES = 1024 * 1024

_GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "NoSuchBucket"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}


def map_aws_error(exc: Exception, ref: ObjectRef) -> PipelineError:
    """Translate a boto error into ``ObjectGone``, ``ThrottledError`` or ``ServiceUnavailable``."""
    code = aws.error_code(exc)
    if code in _GONE:
        return ObjectGone(f"s3://{ref.bucket}/{ref.key} ({ref.version_id or 'latest'}) is gone",
                          **ref.log_context())
    if code in _THROTTLED:
        return ThrottledError(f"S3 throttled: {code}")
    return ServiceUnavailable(f"S3 error {code or type(exc).__name__}: {exc}")


def ensure_allowed(ref: ObjectRef, settings: Settings | None = None) -> None:
    """Raises ``BucketNotAllowed`` unless the object's bucket is in ``ALLOWED_BUCKETS``."""
    s = settings or get_settings()
    if ref.bucket not in s.allowed_buckets:
        raise BucketNotAllowed(f"bucket {ref.bucket!r} is not in ALLOWED_BUCKETS")


def _version(ref: ObjectRef) -> dict[str, str]:
    return {"VersionId": ref.version_id} if ref.version_id else {}


def head(ref: ObjectRef) -> dict[str, Any]:
    """Size, etag, version, last-modified and content type of the object the event names."""
    try:
        resp = aws.s3().head_object(Bucket=ref.bucket, Key=ref.key, **_version(ref))
    except (ClientError, BotoCoreError) as exc:
        raise map_aws_error(exc, ref) from exc
    return {
        "size": int(resp.get("ContentLength", 0)),
        "etag": str(resp.get("ETag", "")).strip('"') or None,
        "version_id": resp.get("VersionId") or ref.version_id,
        "last_modified": resp["LastModified"].isoformat() if resp.get("LastModified") else None,
        "content_type_header": resp.get("ContentType"),
    }


def read_head(ref: ObjectRef, size: int) -> bytes:
    """The first ``HEAD_BYTES`` of the object (``b""`` for an empty one)."""
    if size == 0:
        return b""
    try:
        resp = aws.s3().get_object(Bucket=ref.bucket, Key=ref.key,
                                   Range=f"bytes=0-{min(size, HEAD_BYTES) - 1}", **_version(ref))
        data: bytes = resp["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise map_aws_error(exc, ref) from exc
    return data


@contextlib.contextmanager
def downloaded(ref: ObjectRef, max_bytes: int, etag: str | None = None) -> Iterator[Path]:
    """Stream the object to a private temporary file, never holding it in memory.

    The local name is random: object keys are never used as paths.

    Raises:
        FileTooLarge: more than ``max_bytes`` arrived (the object grew since the HEAD).
        ObjectGone: the object (or its version/etag) no longer exists.
    """
    extra: dict[str, str] = _version(ref)
    if etag and not ref.version_id:
        extra["IfMatch"] = f'"{etag}"'
    fd, name = tempfile.mkstemp(prefix="filesearch-", suffix=".bin")
    path = Path(name)
    try:
        try:
            body = aws.s3().get_object(Bucket=ref.bucket, Key=ref.key, **extra)["Body"]
            written = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FileTooLarge(f"object exceeds {max_bytes} bytes while downloading")
                    out.write(chunk)
        except (ClientError, BotoCoreError) as exc:
            if aws.error_code(exc) in ("PreconditionFailed", "412"):
                raise ObjectGone(f"s3://{ref.bucket}/{ref.key} changed since the event "
                                 "(etag differs); the newer event indexes it") from exc
            raise map_aws_error(exc, ref) from exc
        yield path
    finally:
        path.unlink(missing_ok=True)
