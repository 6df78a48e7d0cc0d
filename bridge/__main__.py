"""``python -m bridge``: run the bridge until SIGTERM or Ctrl-C (finishes the batch in hand)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from bridge.consumer import Bridge
from pipeline.logs import setup_logging
from pipeline.settings import ConfigError, get_settings


def main() -> int:
    try:
        settings = get_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    bridge = Bridge(settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bridge.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
