"""Explicit registry of extractors by media type.

Nothing registers itself on import: ``extractors/__init__.py`` lists the built-in extractors once.
Registering a media type twice is a programming error and raises ``ValueError``.
"""

from __future__ import annotations

from extractors.base import Extractor


def normalize_media_type(media_type: str) -> str:
    """``media_type`` lower-cased, without parameters: ``Text/HTML; charset=x`` -> ``text/html``."""
    return media_type.split(";", 1)[0].strip().lower()


class Registry:
    """A mapping from media type to the extractor that handles it."""

    def __init__(self) -> None:
        self._extractors: dict[str, Extractor] = {}

    def register(self, media_type: str, extractor: Extractor) -> None:
        """Register ``extractor`` for ``media_type``.

        Raises ``ValueError`` if the media type is malformed or already registered.
        """
        key = normalize_media_type(media_type)
        if "/" not in key:
            raise ValueError(f"not a media type: {media_type!r}")
        if key in self._extractors:
            raise ValueError(f"an extractor is already registered for {key}")
        self._extractors[key] = extractor

    def lookup(self, media_type: str) -> Extractor | None:
        """The extractor for ``media_type`` (parameters and case ignored), or ``None``."""
        return self._extractors.get(normalize_media_type(media_type))

    def registered_types(self) -> tuple[str, ...]:
        """All registered media types, sorted."""
        return tuple(sorted(self._extractors))


#: the process-wide registry used by ``extractors.extract_file``
default_registry = Registry()


def register(media_type: str, extractor: Extractor) -> None:
    """Register ``extractor`` in the default registry; raises ``ValueError`` on a duplicate."""
    default_registry.register(media_type, extractor)


def lookup(media_type: str) -> Extractor | None:
    """The extractor registered for ``media_type`` in the default registry, or ``None``."""
    return default_registry.lookup(media_type)


def registered_types() -> tuple[str, ...]:
    """Media types registered in the default registry, sorted."""
    return default_registry.registered_types()
