"""Signed task messages: Celery's ``auth`` serializer, configured from settings.

With ``SIGNING_KEY_FILE``, ``SIGNING_CERT_FILE`` and ``SIGNING_CERT_STORE`` set, every task
message this process sends (the bridge's chains, each stage's next stage, retries, re-queues) is
signed with the private key, and every task message a worker receives must carry a valid
signature from a certificate in the store.  A message written to a queue by anyone without a
trusted key is refused before it is decoded, and dead-lettered with reason
``invalid-signature`` by ``tasks.consumer.Consumer``.  Unset: off, plain JSON (never pickle).

What is signed is the serialized body (``[args, kwargs, embed]``), not the headers (task name,
id, retries): see docs/security.md for what that does and does not protect.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.settings import Settings

logger = logging.getLogger(__name__)

#: the serializer name Celery registers for signed messages, and its content type on the wire
AUTH_SERIALIZER = "auth"
AUTH_CONTENT_TYPE = "application/data"
#: what signed messages wrap (the body is JSON inside the signature)
INNER_SERIALIZER = "json"


def configure(app: Any, settings: Settings) -> bool:
    """Turn on signing for ``app`` when the settings name a key; True if it is on.

    Must run before the app sends or consumes a task (``tasks/__init__.py`` calls it right
    after ``config_from_object``).  Events and results stay JSON; nothing accepts pickle.

    Raises:
        celery.exceptions.ImproperlyConfigured: ``cryptography`` is missing
            (``pip install cryptography``).
        celery.exceptions.SecurityError: the key, certificate or store cannot be read, or a
            certificate in the store has expired.
    """
    if not settings.signing_enabled:
        return False
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - cryptography ships with the dev tools
        from celery.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SIGNING_KEY_FILE is set but cryptography is not "
                                   "installed: pip install cryptography") from exc
    app.conf.update(
        task_serializer=AUTH_SERIALIZER,
        accept_content=[AUTH_SERIALIZER],
        security_key=settings.signing_key_file,
        security_certificate=settings.signing_cert_file,
        security_cert_store=settings.signing_cert_store,
        security_digest=settings.signing_digest,
    )
    # allowed_serializers: what kombu may decode where no accept list is given (events,
    # results).  Task messages are checked against accept_content=["auth"] instead.
    app.setup_security(allowed_serializers=[INNER_SERIALIZER], serializer=INNER_SERIALIZER,
                       digest=settings.signing_digest)
    logger.info("task messages are signed and verified",
                extra={"certificate": settings.signing_cert_file,
                       "cert_store": settings.signing_cert_store,
                       "digest": settings.signing_digest})
    return True
