"""Fault injection for tests only (environment-driven, off by default, refused in production).

    FAULT_INDEX_TRANSIENT_P=0.2   20 % of index writes fail with IndexUnavailable
    FAULT_EXTRACT_HANG_S=45       every extraction first sleeps 45 s (a "long PDF")
    FAULT_EXTRACT_CRASH_P=0.1     10 % of extractions kill their pool process (os._exit)
    FAULT_KEY_PREFIX=slow/        only keys under this prefix are disturbed
"""

from __future__ import annotations

import logging
import os
import random
import time

from pipeline.errors import IndexUnavailable
from pipeline.objects import ObjectRef
from pipeline.settings import get_settings

logger = logging.getLogger(__name__)


def _applies(ref: ObjectRef) -> bool:
    return ref.key.startswith(get_settings().fault_key_prefix)


def before_index(ref: ObjectRef) -> None:
    """Raises ``IndexUnavailable`` with probability ``FAULT_INDEX_TRANSIENT_P``."""
    p = get_settings().fault_index_transient_p
    if p and _applies(ref) and random.random() < p:
        raise IndexUnavailable("injected fault: index unavailable (FAULT_INDEX_TRANSIENT_P)")


def before_extract(ref: ObjectRef) -> None:
    """Sleeps ``FAULT_EXTRACT_HANG_S``, or kills this process with ``FAULT_EXTRACT_CRASH_P``."""
    s = get_settings()
    if not _applies(ref):
        return
    if s.fault_extract_crash_p and random.random() < s.fault_extract_crash_p:
        logger.error("injected fault: pool process exits mid-extraction", extra=ref.log_context())
        os._exit(137)
    if s.fault_extract_hang_s:
        logger.warning("injected fault: extraction hangs %.0f s", s.fault_extract_hang_s,
                       extra=ref.log_context())
        time.sleep(s.fault_extract_hang_s)
