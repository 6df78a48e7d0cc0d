"""Budgets an extractor spends while it works: wall time and characters of text."""

from __future__ import annotations

import time

from extractors.base import Limits
from pipeline.errors import ExtractionTimeout


class Deadline:
    """The wall-time budget of one extraction, started when it is created."""

    def __init__(self, limits: Limits) -> None:
        self.seconds = limits.max_seconds
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the extraction started."""
        return time.monotonic() - self.started

    @property
    def remaining(self) -> float:
        """Seconds left (negative once spent)."""
        return self.seconds - self.elapsed

    def check(self, where: str) -> None:
        """Raise ``ExtractionTimeout`` if the budget is spent; ``where`` names the position."""
        elapsed = self.elapsed
        if elapsed > self.seconds:
            raise ExtractionTimeout(
                f"{elapsed:.1f}s spent before {where}, limit {self.seconds}s",
                elapsed=elapsed,
            )


class TextSink:
    """Collects text up to ``limits.max_chars`` characters; ``full`` once that is reached."""

    def __init__(self, limits: Limits) -> None:
        self.max_chars = limits.max_chars
        self.parts: list[str] = []
        self.chars = 0
        self.truncated = False

    @property
    def full(self) -> bool:
        """No more text is wanted."""
        return self.truncated

    def add(self, text: str) -> bool:
        """Append ``text`` (cut at the limit); returns ``False`` once the sink is full."""
        if self.truncated:
            return False
        room = self.max_chars - self.chars
        if len(text) > room:
            text, self.truncated = text[:room], True
        self.parts.append(text)
        self.chars += len(text)
        return not self.truncated

    def text(self, separator: str = "") -> str:
        """All collected text joined with ``separator``."""
        return separator.join(self.parts)
