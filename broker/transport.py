"""kombu's SQS transport with Celery events and remote control (``inspect``, Flower) on SNS.

Selected in celeryconfig with ``broker_transport = "broker.transport:Transport"`` (kombu resolves
it with ``symbol_by_name``; nothing in kombu or Celery is patched).  Each override, and why:

1. ``Transport.implements.exchange_type`` adds ``fanout`` (and ``topic``): Celery only starts a
   worker's remote-control step on a transport that supports fanout.  Fanout exchanges are SNS
   topics (kombu's ``supports_fanout``, on by default here); each consumer's queue subscribes.
2. ``exchange_declare``: the exchanges named in the ``fanout_exchanges`` transport option (the
   event exchange, ``celeryev``) are declared fanout whatever type Celery asks for.  Celery
   picks fanout for its event exchange only on redis/gcpubsub; as a topic exchange an event
   would reach only queues bound *in the publishing process*, i.e. no monitor.
3. ``_lookup`` / ``_put``: a pidbox reply (exchange ``reply.<ns>.pidbox``) has no binding in the
   worker that sends it; it goes to the queue ``<routing_key>.reply.<ns>.pidbox`` that the asking
   client declared (``kombu.pidbox.Mailbox.get_reply_queue``).  The worker never creates it: if
   it is gone (client gone), the reply is dropped.
4. ``_delete_message``: a no-ack consumer without an event loop (Flower's event thread,
   ``celery inspect``) deletes with the synchronous client; stock kombu needs a hub for it.
5. ``_resolve_queue_url`` / ``_new_queue`` / ``sqs`` / ``asynsqs``: with ``predefined_queues``
   stock kombu refuses every other queue.  Dynamic queues (event, reply, mailbox; see
   ``broker.naming``) are looked up with ``GetQueueUrl`` or created, tagged with their owner,
   and use the connection's default client.  Any other undeclared name is still refused, and
   predefined queues are never deleted.
6. ``basic_cancel`` / ``_delete`` / ``after_reply_message_received``: virtual transports ignore
   ``auto_delete``; dynamic queues are deleted (with their SNS subscriptions) when their
   consumer is cancelled or its channel closed, and at process exit (``broker.owned``).

7. ``_put_fanout``: events (the ``fanout_exchanges``) are handed to a background publisher
   (``broker.events``): one synchronous SNS ``Publish`` per event on the worker's main thread
   halved throughput.  Remote-control broadcasts stay synchronous.

Also: ``delete_observer`` (transport option, ``"module:function"``) is called with
``(queue, ok, error_code)`` after every ``DeleteMessage`` on a predefined queue (acks and
discarded rejects), for metrics.

Transport options added: ``dynamic_queue_prefix`` (prefix of every dynamic queue name),
``event_queue_prefix`` (Celery's ``event_queue_prefix``, default ``celeryev``),
``fanout_exchanges`` (default ``["celeryev"]``), ``dynamic_queue_retention`` (seconds, default
300), ``dynamic_queue_heartbeat`` (seconds between owner heartbeats, default 60),
``sweep_on_start`` (default True: the first dynamic queue a process creates starts one
background ``broker.sweep`` of orphaned queues), ``delete_observer``.

Caveat: ``Connection.switch`` (broker failover) builds the new transport from the URL scheme,
so a failover connection is stock kombu SQS without these overrides; do not configure
failover URLs with this transport.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from kombu.transport import SQS
from kombu.transport.SQS.exceptions import DoesNotExistQueueException, UndefinedQueueException
from kombu.utils.imports import symbol_by_name
from kombu.utils.objects import cached_property

from broker import events
from broker.naming import (
    EVENTS,
    PIDBOX,
    REPLY,
    REPLY_EXCHANGE,
    TAG_HEARTBEAT,
    TAG_HOST,
    TAG_KIND,
    TAG_PID,
    Namer,
    hostname,
)
from broker.owned import GONE, OwnedQueue, error_code, registry
from broker.sweep import sweep_in_background

logger = logging.getLogger(__name__)

#: seconds a message stays in a dynamic queue nobody reads (SQS minimum: 60)
DEFAULT_RETENTION_S = 300
#: ``(queue, ok, error_code)`` callback type of the ``delete_observer`` option
DeleteObserver = Callable[[str, bool, str], None]


class Channel(SQS.Channel):
    """SQS channel with fanout on SNS and dynamic queues next to predefined ones."""

    @cached_property
    def namer(self) -> Namer:
        opts = self.transport_options
        return Namer(opts.get("dynamic_queue_prefix", ""),
                     opts.get("event_queue_prefix", "celeryev"))

    @cached_property
    def supports_fanout(self) -> bool:
        return bool(self.transport_options.get("supports_fanout", True))

    @cached_property
    def fanout_exchanges(self) -> frozenset[str]:
        return frozenset(self.transport_options.get("fanout_exchanges", ("celeryev",)))

    @cached_property
    def delete_observer(self) -> DeleteObserver | None:
        observer = self.transport_options.get("delete_observer")
        return symbol_by_name(observer) if isinstance(observer, str) else observer

    # ---- 2. the event exchange is fanout --------------------------------------------------

    def exchange_declare(self, exchange: str | None = None, type: str = "direct",
                         *args: Any, **kwargs: Any) -> None:
        if exchange in self.fanout_exchanges:
            type = "fanout"
        super().exchange_declare(exchange, type, *args, **kwargs)

    def _put_fanout(self, exchange: str, message: dict[str, Any], routing_key: str,
                    **kwargs: Any) -> None:
        # 7. events are published off the main thread (broker/events.py)
        if exchange in self.fanout_exchanges:
            events.publisher.submit(super()._put_fanout, exchange, message, routing_key,
                                    **kwargs)
            return
        super()._put_fanout(exchange, message, routing_key, **kwargs)

    # ---- 3. pidbox replies go to the asking client's queue --------------------------------

    def _lookup(self, exchange: str, routing_key: str, default: str | None = None) -> Any:
        if exchange and routing_key and REPLY_EXCHANGE.match(exchange):
            return [f"{routing_key}.{exchange}"]
        return super()._lookup(exchange, routing_key, default)

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        if self.namer.kind(queue) != REPLY:
            return super()._put(queue, message, **kwargs)
        try:
            self._resolve_queue_url(queue)  # never created from this side
            super()._put(queue, message, **kwargs)
        except DoesNotExistQueueException:
            logger.debug("reply queue %s is gone; reply dropped", queue)
        except ClientError as exc:
            if error_code(exc) not in GONE:
                raise
            self._queue_cache.pop(self.canonical_queue_name(queue), None)
            logger.debug("reply queue %s is gone; reply dropped", queue)

    # ---- 4. no-ack deletes without an event loop ------------------------------------------

    def _delete_message(self, queue_name: str, message: dict[str, Any]) -> None:
        if self.hub is not None:
            return super()._delete_message(queue_name, message)
        url = self._new_queue(queue_name)
        self.sqs(queue=self.canonical_queue_name(queue_name)).delete_message(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    # ---- 5. dynamic queues next to predefined ones ----------------------------------------

    def canonical_queue_name(self, queue_name: str) -> str:
        if self.namer.kind(queue_name):
            return self.namer.physical(queue_name)
        return str(super().canonical_queue_name(queue_name))

    def _resolve_queue_url(self, queue: str) -> str:
        try:
            return str(super()._resolve_queue_url(queue))
        except UndefinedQueueException:
            if not self.namer.kind(queue):
                raise
        name = self.canonical_queue_name(queue)
        try:
            url = str(self.sqs().get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if error_code(exc) in GONE:
                raise DoesNotExistQueueException(f"queue {name!r} does not exist") from exc
            raise
        self._queue_cache[name] = url
        return url

    def _new_queue(self, queue: str, **kwargs: Any) -> str:
        kind = self.namer.kind(queue)
        if kind is None:
            return str(super()._new_queue(queue, **kwargs))
        name = self.canonical_queue_name(queue)
        try:
            url = self._resolve_queue_url(queue)
        except DoesNotExistQueueException:
            url = self._create_dynamic(name, kind)
        if kind == REPLY:
            registry().touch(name)
        return url

    def _create_dynamic(self, name: str, kind: str) -> str:
        owned = registry()
        if owned.closing:
            raise DoesNotExistQueueException(f"process exiting: {name!r} not created")
        owned.heartbeat_s = float(self.transport_options.get("dynamic_queue_heartbeat",
                                                             owned.heartbeat_s))
        retention = self.transport_options.get("dynamic_queue_retention", DEFAULT_RETENTION_S)
        tags = {TAG_KIND: kind, TAG_HOST: hostname(), TAG_PID: str(owned.pid),
                TAG_HEARTBEAT: str(int(time.time()))}
        client = self.sqs()
        url = str(client.create_queue(
            QueueName=name, tags=tags,
            Attributes={"VisibilityTimeout": str(self.visibility_timeout),
                        "MessageRetentionPeriod": str(max(60, int(retention)))})["QueueUrl"])
        self._queue_cache[name] = url
        owned.add(OwnedQueue(name=name, url=url, kind=kind, sqs=client))
        logger.info("created dynamic queue %s", name)
        if self.namer.prefix and self.transport_options.get("sweep_on_start", True):
            sweep_in_background(client, self.fanout.get_client(), self.namer.prefix)
        return url

    def sqs(self, queue: str | None = None) -> Any:
        if queue is not None and self.predefined_queues and queue not in self.predefined_queues:
            queue = None  # a dynamic queue: the connection's default client
        known = queue is not None and queue in self._predefined_queue_clients
        client = super().sqs(queue=queue)
        if queue is not None and not known and self.delete_observer is not None:
            _observe_deletes(client, queue, self.delete_observer)
        return client

    def asynsqs(self, queue: str | None = None) -> Any:
        if queue is not None and self.predefined_queues and queue not in self.predefined_queues:
            queue = None
        return super().asynsqs(queue=queue)

    def _subscribe_queue_to_fanout_exchange_if_required(self, queue_name: str) -> None:
        try:
            exchange = self._get_exchange_for_queue(queue_name)
        except UndefinedQueueException:
            return
        if self._exchange_is_fanout(exchange):
            arn = self.fanout.subscriptions.subscribe_queue(queue_name=queue_name,
                                                            exchange_name=exchange)
            registry().note_subscription(self.canonical_queue_name(queue_name),
                                         self.fanout.get_client(), arn)

    # ---- 6. dynamic queues end with their consumer -----------------------------------------

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super().basic_cancel(consumer_tag)
        if queue and self.namer.kind(queue) in (EVENTS, PIDBOX):
            self._remove_dynamic(queue)
        return result

    def _delete(self, queue: str, exchange: str | None = None, *args: Any,
                **kwargs: Any) -> None:
        kind = self.namer.kind(queue)
        if kind is None:
            return super()._delete(queue, exchange, *args, **kwargs)  # predefined: kept
        if kind == REPLY:
            registry().release(self.canonical_queue_name(queue))
        else:
            self._remove_dynamic(queue)

    def after_reply_message_received(self, queue: str) -> None:
        self._delete(queue)
        self.state.queue_bindings_delete(queue)

    def close(self) -> None:
        super().close()
        registry().delete_idle()

    def _remove_dynamic(self, queue: str) -> None:
        name = self.canonical_queue_name(queue)
        registry().delete(name)
        self._queue_cache.pop(name, None)
        self.namer.forget(queue)


def _observe_deletes(client: Any, queue: str, observer: DeleteObserver) -> None:
    """Report the outcome of every ``DeleteMessage`` this client makes for ``queue``."""
    def after_call(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        ok = http_response is not None and http_response.status_code < 300
        code = "" if ok else str(parsed.get("Error", {}).get("Code", "Unknown"))
        _notify(observer, queue, ok, code)

    def after_error(exception: BaseException, **_: Any) -> None:
        _notify(observer, queue, False, type(exception).__name__)

    client.meta.events.register("after-call.sqs.DeleteMessage", after_call,
                                unique_id=f"delete-observer-{queue}")
    client.meta.events.register("after-call-error.sqs.DeleteMessage", after_error,
                                unique_id=f"delete-observer-error-{queue}")


def _notify(observer: DeleteObserver, queue: str, ok: bool, code: str) -> None:
    try:
        observer(queue, ok, code)
    except Exception:  # metrics must never break an ack
        logger.exception("delete observer failed")


class Transport(SQS.Transport):
    """kombu's SQS transport with ``Channel`` above; see the module docstring."""

    Channel = Channel

    implements = SQS.Transport.implements.extend(
        exchange_type=frozenset(["direct", "topic", "fanout"]),
    )


__all__ = ["Channel", "Transport"]
