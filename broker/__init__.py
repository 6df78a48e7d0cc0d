"""Broker extensions: Celery events and remote control over SQS + SNS.

- ``broker.transport``: the kombu transport selected by ``broker_transport`` in celeryconfig
  (kombu's SQS transport plus fanout over SNS, pidbox replies and dynamic queues).
- ``broker.naming``: physical names of the dynamic (event, reply, mailbox) queues.
- ``broker.owned``: the queues this process created, kept alive and removed at exit.
- ``broker.sweep``: ``python -m broker.sweep`` removes dynamic queues whose owner is gone.
- ``broker.flower``: ``python -m broker.flower`` starts Flower with credentials from settings.

See docs/monitoring.md.
"""
