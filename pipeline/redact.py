"""Keep credentials and presigned URLs out of the logs.

``redact(text)`` masks what must never be written to a log line: AWS access key ids and secret
keys, session tokens, the signature/credential parameters of presigned URLs (SigV4 and SigV2),
passwords in URLs (``https://user:password@host``), ``Authorization`` header values and PEM
private keys.  ``RedactingFilter`` applies it to every record a handler emits: the message,
its arguments, ``extra={...}`` values and the formatted traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: what replaces a secret
MASK = "[REDACTED]"
#: nesting depth of extra values that is still walked (deeper values are left alone)
MAX_DEPTH = 4

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                re.DOTALL), f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----"),
    # presigned URL query parameters (SigV4 and legacy SigV2)
    (re.compile(r"(?i)\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
                r"AWSAccessKeyId|x-amz-security-token)=([^&\s\"'<>]+)"), rf"\1={MASK}"),
    # password in a URL's user info
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@\"']+):([^/\s@\"']+)@"),
     rf"\1\2:{MASK}@"),
    # Authorization header values
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:Basic|Bearer|AWS4-HMAC-SHA256|AWS)"
                r"\s+[^\"'\n]+"), rf"\1{MASK}"),
    # key=value / "key": "value" forms of secrets
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_access_key|secretaccesskey|"
                r"aws_session_token|session_token|sessiontoken|security_token|password|passwd|"
                r"secret|api_key|apikey)([\"']?\s*[:=]\s*[\"']?)([^\"'\s,&}]+)"), rf"\1\2{MASK}"),
    # AWS access key ids (long-term AKIA, temporary ASIA)
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), rf"\1{MASK}"),
)


def redact(text: str) -> str:
    """``text`` with every credential-looking part replaced by ``MASK``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, depth: int = 0) -> Any:
    """Strings redacted inside lists, tuples and dicts (up to ``MAX_DEPTH``); others as is."""
    if isinstance(value, str):
        return redact(value)
    if depth >= MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: redact_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, depth + 1) for v in value)
    return value


#: LogRecord attributes that are not "extra" context
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record before any formatter sees it.

    Attach it to a handler (``handler.addFilter(RedactingFilter())``) so that it covers
    records of every logger, Celery's and botocore's included.  Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        record.msg, record.args = redact(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and not key.startswith("_"):
                record.__dict__[key] = redact_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
