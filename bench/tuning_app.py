"""The pipeline's Celery app with start-up changes, for ``bench.tuning`` experiments only.

    celery -A bench.tuning_app worker ...     # the worker, with the changes below
    python -c "import bench.tuning_app, runpy; runpy.run_module('bridge', run_name='__main__')"

Changes (environment, read once at import): task events off (``worker_send_task_events`` and
``task_send_sent_event``) unless ``BENCH_TASK_EVENTS=on``; ``worker_prefetch_multiplier`` from
``BENCH_PREFETCH`` when set.  Nothing in ``celeryconfig.py`` changes.
"""

from __future__ import annotations

import os

from tasks import app

if os.environ.get("BENCH_TASK_EVENTS", "off") != "on":
    app.conf.worker_send_task_events = False
    app.conf.task_send_sent_event = False
if os.environ.get("BENCH_PREFETCH"):
    app.conf.worker_prefetch_multiplier = int(os.environ["BENCH_PREFETCH"])

__all__ = ["app"]
