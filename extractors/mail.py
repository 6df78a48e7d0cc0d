"""E-mail (``.eml``, RFC 5322 / MIME) with the standard library's ``email`` and ``policy.default``.

Subject is the title, From the author, Date the created date; the body is the text/plain part
(or the HTML part converted to text).  Attachments are listed by name, type and size; the text of
text-ish attachments (plain, CSV, Markdown, HTML) is appended after the body.
"""

from __future__ import annotations

import logging
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

from extractors.base import Extraction, Limits
from extractors.budget import TextSink
from extractors.html import html_to_text
from extractors.text import decode_bytes
from pipeline.errors import CorruptFile

logger = logging.getLogger(__name__)

#: attachments listed in ``metadata["attachments"]`` at most
MAX_ATTACHMENTS = 200
#: characters kept of one header value
MAX_HEADER_CHARS = 1000
#: attachment types whose text is appended after the body
TEXT_ATTACHMENTS = frozenset({"text/plain", "text/csv", "text/markdown", "text/html"})
#: separator line before the text of an attachment
ATTACHMENT_HEADING = "\n\n--- {name} ---\n"


def _header(message: Message, name: str) -> str | None:
    """A header as a string (decoded by the policy); ``None`` if absent or unparseable."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError) as exc:  # malformed header
        logger.debug("header %s unreadable: %s", name, exc)
        return None
    text = str(value).strip()[:MAX_HEADER_CHARS] if value is not None else ""
    return text or None


def _part_text(part: Message) -> str:
    """The decoded text of a text/* part (declared charset, else detected); HTML converted."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset()
    text: str | None = None
    if charset:
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            text = None
    if text is None:
        text = decode_bytes(data)[0]
    if part.get_content_type() == "text/html":
        text = html_to_text(text)[0]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _attachments(message: EmailMessage, body: Message | None) -> list[Message]:
    """Every leaf part that is not the body: attachments and inline non-text parts."""
    found: list[Message] = []
    for part in message.walk():
        if part is body or part.is_multipart():
            continue
        if (
            part.get_content_maintype() == "text"
            and not part.get_filename()
            and (part.get_content_disposition() != "attachment")
        ):
            continue  # an alternative of the body
        found.append(part)
    return found


def extract_mail(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Extract an RFC 5322 message: headers, body text, attachment list and text attachments.

    Raises ``CorruptFile`` if the message has no header at all and ``OSError`` if the file
    cannot be read.
    """
    with path.open("rb") as handle:
        message = cast(EmailMessage, BytesParser(policy=policy.default).parse(handle))
    if not message.keys():
        raise CorruptFile("no mail header found")
    sink = TextSink(limits)
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        sink.add(_part_text(body))
    listed: list[dict[str, Any]] = []
    for part in _attachments(message, body):
        payload = part.get_payload(decode=True)
        name = part.get_filename() or ""
        part_type = part.get_content_type()
        listed.append(
            {"name": name, "content_type": part_type,
             "size": len(payload) if isinstance(payload, bytes) else 0}
        )  # fmt: skip
        if part_type in TEXT_ATTACHMENTS and not sink.full:
            sink.add(ATTACHMENT_HEADING.format(name=name or part_type) + _part_text(part))
    metadata: dict[str, Any] = {}
    for header, key in (("To", "to"), ("Cc", "cc"), ("Message-ID", "message_id")):
        value = _header(message, header)
        if value:
            metadata[key] = value
    date = _header(message, "Date")
    if date:
        try:
            metadata["created"] = parsedate_to_datetime(date).isoformat()
        except (TypeError, ValueError):
            metadata["created_raw"] = date
    if listed:
        metadata["attachments"] = listed[:MAX_ATTACHMENTS]
    extraction = Extraction(content_type=content_type, text=sink.text().strip(),
                            truncated=sink.truncated, metadata=metadata)  # fmt: skip
    extraction.title = _header(message, "Subject")
    extraction.author = _header(message, "From")
    return extraction
