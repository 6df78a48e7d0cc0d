"""Safe XML parsing for the parts of office documents: defusedxml only, streamed where big.

Entity declarations (billion laughs, quadratic blow-up), external entities and DTD tricks raise
``HostileFile``; XML that does not parse raises ``CorruptFile``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring, iterparse

from pipeline.errors import CorruptFile, HostileFile

logger = logging.getLogger(__name__)

#: characters kept of one metadata value (title, author ...)
MAX_FIELD_CHARS = 1000

BLOCK = "block"
START = "start"


def local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``."""
    return tag.rpartition("}")[2]


def parse(data: bytes, where: str) -> Element:
    """Parse a small part into a tree.

    Raises ``HostileFile`` for entity declarations or external references, ``CorruptFile`` for
    malformed XML.
    """
    try:
        root: Element = fromstring(data)
    except DefusedXmlException as exc:
        raise HostileFile(f"{where}: forbidden XML construct: {exc!r}", part=where) from exc
    except (ParseError, ValueError) as exc:
        raise CorruptFile(f"{where}: malformed XML: {exc}", part=where) from exc
    return root


def stream_blocks(
    source: IO[bytes], where: str, blocks: frozenset[str], marks: frozenset[str] = frozenset()
) -> Iterator[tuple[str, Element]]:
    """Stream a big part: ``("start", element)`` when an element named in ``marks`` opens and
    ``("block", element)`` when an outermost element named in ``blocks`` is complete.

    Names are Clark names (``{namespace}local``).  A block is dropped from the tree once the
    caller resumes, so memory stays bounded by the largest block.  Raises what ``parse`` raises.
    """
    stack: list[Element] = []
    depth = 0
    try:
        for event, element in iterparse(source, events=("start", "end")):
            if event == "start":
                stack.append(element)
                if element.tag in blocks:
                    depth += 1
                if element.tag in marks:
                    yield START, element
                continue
            stack.pop()
            if element.tag not in blocks:
                continue
            depth -= 1
            if depth:
                continue
            yield BLOCK, element
            element.clear()
            if stack:
                stack[-1].remove(element)
    except DefusedXmlException as exc:
        raise HostileFile(f"{where}: forbidden XML construct: {exc!r}", part=where) from exc
    except (ParseError, ValueError) as exc:
        raise CorruptFile(f"{where}: malformed XML: {exc}", part=where) from exc


def mixed_text(
    element: Element,
    specials: dict[str, str],
    *,
    breaks: Iterable[str] = (),
    skip: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> str:
    """All text in ``element`` in document order, without recursion.

    ``specials`` maps Clark names of empty elements to the text they stand for (a tab, a line
    break); an element named in ``breaks`` nested inside ``element`` starts a new line; elements
    named in ``skip`` are left out with their content.  With ``only``, just the text of those
    elements counts (OOXML keeps text in ``w:t``/``a:t``/``t`` only; tails are layout).
    """
    breaking, skipped = frozenset(breaks), frozenset(skip)
    texts = None if only is None else frozenset(only)
    parts: list[str] = []
    pending: list[tuple[Element, bool]] = [(element, False)]
    while pending:
        node, closing = pending.pop()
        if closing:
            if node is not element and node.tail and texts is None:
                parts.append(node.tail)
            continue
        if node.tag in skipped:
            pending.append((node, True))
            continue
        if node is not element and node.tag in breaking:
            parts.append("\n")
        special = specials.get(node.tag)
        if special is not None:
            parts.append(special * _repeat(node))
        elif node.text and (texts is None or node.tag in texts):
            parts.append(node.text)
        pending.append((node, True))
        if special is None:
            pending.extend((child, False) for child in reversed(node))
    return "".join(parts)


def _repeat(node: Element) -> int:
    """``text:c`` of an ODF ``<text:s>``: how many spaces it stands for (1 if absent)."""
    for key, value in node.attrib.items():
        if local_name(key) == "c":
            try:
                return max(1, min(int(value), 1000))
            except ValueError:
                return 1
    return 1


def field(root: Element, tag: str) -> str | None:
    """Stripped text of the first element named ``tag`` (Clark name), cut to a sane length."""
    found = root.find(f".//{tag}")
    if found is None or not found.text:
        return None
    value = found.text.strip()[:MAX_FIELD_CHARS]
    return value or None


def join_lines(lines: Iterable[str]) -> str:
    """Non-empty lines (right-stripped) joined by newlines."""
    return "\n".join(line.rstrip() for line in lines if line.strip())


def iso_date(value: str | None) -> str | None:
    """A document-property date (W3CDTF, ``2024-01-02T03:04:05Z``) as ISO 8601, or ``None``."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None
