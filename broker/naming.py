"""Physical SQS names of the dynamic queues Celery declares for events and remote control.

Celery and kombu name these queues for AMQP, where they cost nothing and vanish with their
consumer: ``celeryev.<uuid>`` (an event monitor such as Flower), ``<oid>.reply.<ns>.pidbox``
(the reply queue of an ``inspect``/``control`` client) and ``<node>.<ns>.pidbox`` (a worker's
mailbox).  On SQS they are real resources that outlive a crashed owner, so each gets a name that
says what it is and who created it, under the deployment's queue prefix:

==========  ======================================  ============================================
kind        physical name                           why
==========  ======================================  ============================================
``ev``      ``<prefix>ev-<host>-<pid>-<uuid8>``     one per monitor; uuid8 from Celery's name
``pidbox``  ``<prefix>pidbox-<host>-<pid>-<tok>``   a fresh token per declaration: AWS refuses to
                                                    re-create a deleted name for 60 s
``reply``   ``<prefix>reply-<oid>``                 the worker derives it from the reply routing
                                                    key alone, so it cannot carry host or pid
==========  ======================================  ============================================

Owner host, pid and a heartbeat travel as queue tags (``OWNER_TAGS``), which the sweep reads.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading

#: kinds of dynamic queue
EVENTS, REPLY, PIDBOX = "ev", "reply", "pidbox"
KINDS = (EVENTS, REPLY, PIDBOX)

#: queue tags: which kind, which process created it, and when it last said it was alive
TAG_KIND = "kombu-dynamic"
TAG_HOST = "kombu-owner-host"
TAG_PID = "kombu-owner-pid"
TAG_HEARTBEAT = "kombu-heartbeat"
OWNER_TAGS = (TAG_KIND, TAG_HOST, TAG_PID, TAG_HEARTBEAT)

#: SQS limit on a queue name, in characters
SQS_MAX_NAME = 80
#: characters of the host name kept in a queue name
HOST_CHARS = 24

#: ``reply.<namespace>.pidbox``: the exchange kombu's mailbox replies to
REPLY_EXCHANGE = re.compile(r"^reply\..+\.pidbox$")
_REPLY_QUEUE = re.compile(r"^(?P<oid>[0-9A-Fa-f-]{8,})\.reply\..+\.pidbox$")
_MAILBOX_QUEUE = re.compile(r"^.+\.[^.]+\.pidbox$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe(text: str, limit: int) -> str:
    """``text`` with every character SQS refuses in a name replaced by ``-``, cut to ``limit``."""
    return _UNSAFE.sub("-", text).strip("-")[:limit] or "x"


def hostname() -> str:
    """This machine's short host name, safe for a queue name."""
    return safe(socket.gethostname().split(".")[0], HOST_CHARS)


class Namer:
    """Maps Celery's logical queue names to physical SQS names; one per transport connection.

    Logical names that are not dynamic (``kind()`` is None) are not handled here.
    """

    def __init__(self, prefix: str, event_queue_prefix: str = "celeryev") -> None:
        self.prefix = prefix
        self.event_queue_prefix = event_queue_prefix
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def kind(self, logical: str) -> str | None:
        """``ev``, ``reply`` or ``pidbox`` for a dynamic queue, None for any other name."""
        if logical.startswith(self.event_queue_prefix + "."):
            return EVENTS
        if _REPLY_QUEUE.match(logical):
            return REPLY
        if _MAILBOX_QUEUE.match(logical):
            return PIDBOX
        return None

    def kind_of_physical(self, physical: str) -> str | None:
        """The kind of a physical name made by any ``Namer`` with this prefix."""
        for kind in KINDS:
            if physical.startswith(f"{self.prefix}{kind}-"):
                return kind
        return None

    def physical(self, logical: str) -> str:
        """The physical name of a dynamic queue; stable until ``forget(logical)``.

        Raises:
            ValueError: ``logical`` is not a dynamic queue name.
        """
        with self._lock:
            name = self._names.get(logical)
            if name is None:
                name = self._names[logical] = self._make(logical)
            return name

    def forget(self, logical: str) -> None:
        """Drop the mapping of a deleted queue (a re-declared mailbox gets a new name)."""
        with self._lock:
            self._names.pop(logical, None)

    def _make(self, logical: str) -> str:
        kind = self.kind(logical)
        pid = os.getpid()
        if kind == REPLY:
            match = _REPLY_QUEUE.match(logical)
            assert match is not None
            name = f"{self.prefix}reply-{safe(match['oid'], 40)}"
        elif kind == EVENTS:
            suffix = safe(logical[len(self.event_queue_prefix) + 1:].replace("-", ""), 8)
            name = f"{self.prefix}ev-{hostname()}-{pid}-{suffix}"
        elif kind == PIDBOX:
            name = f"{self.prefix}pidbox-{hostname()}-{pid}-{secrets.token_hex(3)}"
        else:
            raise ValueError(f"not a dynamic queue: {logical!r}")
        if len(name) > SQS_MAX_NAME:
            raise ValueError(f"queue name {name!r} is longer than {SQS_MAX_NAME} characters; "
                             "use a shorter queue prefix")
        return name
