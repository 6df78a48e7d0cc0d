"""``ObjectRef``: the plain, JSON-safe reference to one S3 object version that crosses the broker.

Tasks pass references, never bytes or local paths: the next task of a chain may run elsewhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any, TypedDict

from pipeline.errors import InvalidTaskArguments

#: width to which S3 ``sequencer`` values are left-padded before comparing them
SEQUENCER_WIDTH = 32


class ObjectRefDict(TypedDict, total=False):
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    sequencer: str | None
    event_time: str | None
    event_name: str | None


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object version as named by an event.

    ``version_id`` is absent for unversioned buckets; ``sequencer`` is absent on local endpoints
    (AWS always sends it); ``etag`` and ``size`` are absent for removals.
    """

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None
    #: ISO 8601 UTC time of the event, as S3 wrote it
    event_time: str | None = None
    #: e.g. ``ObjectCreated:Put``, ``ObjectRemoved:Delete``
    event_name: str | None = None

    @property
    def doc_id(self) -> str:
        """Deterministic index id of the object (same for every version of one key)."""
        return document_id(self.bucket, self.key)

    @property
    def is_removal(self) -> bool:
        return bool(self.event_name and self.event_name.startswith("ObjectRemoved"))

    @property
    def order(self) -> str:
        """A string that sorts events of one key in the order S3 applied them.

        The ``sequencer`` (hex, variable length) is left-padded so string order is numeric
        order; without it the event time is used, with the etag only to make the value unique.
        An empty string means "no order known" and sorts before everything.
        """
        if self.sequencer:
            return "s" + self.sequencer.upper().rjust(SEQUENCER_WIDTH, "0")
        if self.event_time:
            return "t" + self.event_time
        return ""

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        """The key's folder with a trailing slash, or ``""`` at the bucket root."""
        return self.key[: len(self.key) - len(self.name)]

    def log_context(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id}

    def to_dict(self) -> ObjectRefDict:
        return ObjectRefDict(**asdict(self))  # type: ignore[typeddict-item]

    @classmethod
    def from_dict(cls, data: object) -> ObjectRef:
        """Build from a message's plain dict.

        Raises:
            InvalidTaskArguments: ``data`` is not a dict with string ``bucket`` and ``key``.
        """
        if not isinstance(data, dict):
            raise InvalidTaskArguments(
                f"object reference must be a dict, got {type(data).__name__}")
        bucket, key = data.get("bucket"), data.get("key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise InvalidTaskArguments(f"object reference needs bucket and key, got {data!r:.200}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def document_id(bucket: str, key: str) -> str:
    """Deterministic id of the document for ``bucket``/``key`` (hex SHA-256, 40 chars)."""
    return hashlib.sha256(f"{bucket}\x00{key}".encode()).hexdigest()[:40]
