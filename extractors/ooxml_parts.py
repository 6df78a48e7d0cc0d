"""The text of OOXML parts: Word paragraphs, Excel rows, PowerPoint slides (all streamed).

Only the text elements count (``w:t``, ``a:t``, ``t``); deleted text, field codes and Excel's
phonetic guides (``rPh``) are left out.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from extractors.budget import Deadline, TextSink
from extractors.safezip import SafeZip
from extractors.xmlparts import mixed_text, parse, stream_blocks

logger = logging.getLogger(__name__)

PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
R_ID = f"{{{OFFICE_RELS}}}id"

#: sheet names kept in ``metadata["sheets"]``
MAX_SHEET_NAMES = 200
#: Word parts read after the body, by relationship type suffix, in this order
WORD_EXTRA_PARTS = ("/header", "/footer", "/footnotes", "/endnotes", "/comments")

_WORD_SPECIALS = {f"{W}tab": "\t", f"{W}br": "\n", f"{W}cr": "\n", f"{W}noBreakHyphen": "-"}
_WORD_TEXT = (f"{W}t",)
_DRAWING_SPECIALS = {f"{A}br": "\n"}
_DRAWING_TEXT = (f"{A}t",)
_CELL_TEXT = (f"{S}t",)
_CELL_SKIP = (f"{S}rPh",)


@dataclass
class Counts:
    """What a part reader found besides text: pages (sheets, slides) and metadata."""

    pages: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Package:
    """An open OOXML package with the budgets its readers spend."""

    zip: SafeZip
    deadline: Deadline
    sink: TextSink

    def relationships(self, part: str) -> list[tuple[str, str, str]]:
        """``(id, type, target part)`` of ``part``'s internal relationships (``[]`` if none)."""
        folder, name = posixpath.split(part)
        data = self.zip.read_optional(posixpath.join(folder, "_rels", f"{name}.rels"))
        if data is None:
            return []
        found = []
        for rel in parse(data, f"{part} relationships").iter(f"{{{PACKAGE_RELS}}}Relationship"):
            target = rel.get("Target", "")
            if rel.get("TargetMode") == "External" or not target:
                continue
            if target.startswith("/"):
                resolved = target.lstrip("/")
            else:
                resolved = posixpath.normpath(posixpath.join(folder, target))
            found.append((rel.get("Id", ""), rel.get("Type", ""), resolved))
        return found

    def blocks(self, part: str, blocks: frozenset[str]) -> Iterator[Element]:
        """Stream the outermost ``blocks`` of ``part``, checking the deadline per block."""
        with self.zip.stream(part) as source:
            for _, element in stream_blocks(source, part, blocks):
                self.deadline.check(part)
                yield element


def read_word(package: Package, main: str) -> Counts:
    """Paragraphs of the body, then of headers, footers, notes and comments."""
    parts = [main]
    rels = package.relationships(main)
    for suffix in WORD_EXTRA_PARTS:
        parts += [target for _, kind, target in rels if kind.endswith(suffix)]
    for part in parts:
        if part not in package.zip:
            continue
        for paragraph in package.blocks(part, frozenset({f"{W}p"})):
            line = mixed_text(paragraph, _WORD_SPECIALS, breaks=(f"{W}p",), only=_WORD_TEXT)
            if line.strip() and not package.sink.add(line + "\n"):
                return Counts()
    return Counts()


def _shared_strings(package: Package, workbook: str) -> list[str]:
    """The workbook's shared strings, in index order."""
    rels = package.relationships(workbook)
    targets = [target for _, kind, target in rels if kind.endswith("/sharedStrings")]
    part = targets[0] if targets else "xl/sharedStrings.xml"
    if part not in package.zip:
        return []
    return [
        mixed_text(item, {}, skip=_CELL_SKIP, only=_CELL_TEXT)
        for item in package.blocks(part, frozenset({f"{S}si"}))
    ]


def _cell_text(cell: Element, shared: list[str]) -> str:
    """The shown value of one ``<c>``: shared or inline string, boolean, number, error."""
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(f"{S}is")
        return "" if inline is None else mixed_text(inline, {}, skip=_CELL_SKIP, only=_CELL_TEXT)
    value = cell.findtext(f"{S}v") or ""
    if kind == "s":
        try:
            return shared[int(value)]
        except (ValueError, IndexError):
            return ""
    if kind == "b":
        return {"1": "TRUE", "0": "FALSE"}.get(value.strip(), value)
    return value


def read_workbook(package: Package, main: str) -> Counts:
    """One tab-separated line per row; each sheet starts with its name, sheets end in ``\\f``."""
    root = parse(package.zip.read(main), main)
    targets = {rel_id: target for rel_id, _, target in package.relationships(main)}
    sheets = [(s.get("name", ""), targets.get(s.get(R_ID, ""))) for s in root.iter(f"{S}sheet")]
    shared = _shared_strings(package, main)
    for index, (name, part) in enumerate(sheets):
        if index and not package.sink.add("\f"):
            break
        package.sink.add(f"{name}\n")
        if part is None or part not in package.zip:
            continue
        for row in package.blocks(part, frozenset({f"{S}row"})):
            cells = [_cell_text(cell, shared) for cell in row.iter(f"{S}c")]
            line = "\t".join(cells).rstrip("\t")
            if line.strip() and not package.sink.add(line + "\n"):
                break
        if package.sink.full:
            break
    names = [name for name, _ in sheets]
    return Counts(pages=len(sheets), metadata={"sheets": names[:MAX_SHEET_NAMES]})


def _drawing_paragraphs(package: Package, part: str) -> None:
    """Add the DrawingML paragraphs (``a:p``) of one slide or notes part to the sink."""
    for paragraph in package.blocks(part, frozenset({f"{A}p"})):
        line = mixed_text(paragraph, _DRAWING_SPECIALS, only=_DRAWING_TEXT)
        if line.strip() and not package.sink.add(line + "\n"):
            return


def read_presentation(package: Package, main: str) -> Counts:
    """Slides in presentation order, each followed by its notes, separated by ``\\f``."""
    root = parse(package.zip.read(main), main)
    targets = {rel_id: target for rel_id, _, target in package.relationships(main)}
    slides = [targets.get(s.get(R_ID, "")) for s in root.iter(f"{P}sldId")]
    for index, slide in enumerate(slides):
        if index and not package.sink.add("\f"):
            break
        if slide is None or slide not in package.zip:
            continue
        _drawing_paragraphs(package, slide)
        for _, kind, notes in package.relationships(slide):
            if kind.endswith("/notesSlide") and notes in package.zip and not package.sink.full:
                _drawing_paragraphs(package, notes)
        if package.sink.full:
            break
    return Counts(pages=len(slides))
