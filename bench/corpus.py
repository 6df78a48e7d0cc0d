"""Files for the benchmark, generated in a temporary folder (nothing large is committed).

- ``make_small``: N small documents, mixed PDF / Office (DOCX, XLSX built by hand with
  ``zipfile`` and XML) / text, each with a unique token so a search can find it;
- ``make_big_pdf``: a PDF of about ``mb`` megabytes (incompressible JPEG images, one per page);
- ``make_many_pages_pdf``: a PDF with ``pages`` pages of text.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

#: share of each kind in the small-document mix (the rest is plain text)
PDF_SHARE, DOCX_SHARE, XLSX_SHARE = 0.4, 0.2, 0.1
_WORDS = ("invoice", "report", "quarterly", "revenue", "meeting", "notes", "budget", "forecast",
          "contract", "review", "supplier", "delivery", "schedule", "project", "milestone",
          "risk", "summary", "appendix", "figure", "table", "会議", "報告書", "予算", "契約")

_CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                  '<Default Extension="rels" '
                  'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                  '<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/officeDocument" Target="{target}"/></Relationships>')


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx_bytes(paragraphs: list[str]) -> bytes:
    """A minimal valid DOCX (WordprocessingML) with one run per paragraph."""
    body = "".join(f"<w:p><w:r><w:t>{_escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document '
                'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                f"<w:body>{body}</w:body></w:document>")
    override = ('<Override PartName="/word/document.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>')
    return _zip({"[Content_Types].xml": _CONTENT_TYPES.format(overrides=override),
                 "_rels/.rels": _RELS.format(target="word/document.xml"),
                 "word/document.xml": document})


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    """A minimal valid XLSX (SpreadsheetML, inline strings) with one sheet."""
    cells = "".join(
        f'<row r="{r + 1}">' + "".join(
            f'<c r="{chr(65 + c)}{r + 1}" t="inlineStr"><is><t>{_escape(v)}</t></is></c>'
            for c, v in enumerate(row)) + "</row>" for r, row in enumerate(rows))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    workbook = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook '
                f'xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="Sheet1" sheetId="1" '
                'r:id="rId1"/></sheets></workbook>')
    wb_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
               'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
               f'<Relationship Id="rId1" Type="{rel}/worksheet" '
               'Target="worksheets/sheet1.xml"/></Relationships>')
    sheet = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet '
             f'xmlns="{main}"><sheetData>{cells}</sheetData></worksheet>')
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = (f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
                 f'<Override PartName="/xl/worksheets/sheet1.xml" '
                 f'ContentType="{ct}.worksheet+xml"/>')
    return _zip({"[Content_Types].xml": _CONTENT_TYPES.format(overrides=overrides),
                 "_rels/.rels": _RELS.format(target="xl/workbook.xml"),
                 "xl/workbook.xml": workbook, "xl/_rels/workbook.xml.rels": wb_rels,
                 "xl/worksheets/sheet1.xml": sheet})


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def pdf_bytes(pages: list[str]) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 550, 800), text, fontsize=10)
    data: bytes = doc.tobytes(garbage=1, deflate=True)
    doc.close()
    return data


def make_small(root: Path, n: int, seed: int = 1) -> list[tuple[Path, str]]:
    """Write ``n`` small mixed documents under ``root``; returns ``(path, key)`` pairs."""
    rng = random.Random(seed)
    files: list[tuple[Path, str]] = []
    for i in range(n):
        token = f"benchtoken{i:05d}"
        roll = rng.random()
        if roll < PDF_SHARE:
            key = f"docs/pdf/report-{i:05d}.pdf"
            data = pdf_bytes([f"{token} " + sentence(rng, rng.randint(40, 300))
                              for _ in range(rng.randint(1, 3))])
        elif roll < PDF_SHARE + DOCX_SHARE:
            key = f"docs/office/memo-{i:05d}.docx"
            data = docx_bytes([token] + [sentence(rng, rng.randint(10, 40))
                                         for _ in range(rng.randint(3, 20))])
        elif roll < PDF_SHARE + DOCX_SHARE + XLSX_SHARE:
            key = f"docs/office/sheet-{i:05d}.xlsx"
            data = xlsx_bytes([[token, "amount", "note"]] + [
                [f"row {r}", str(rng.randint(1, 10_000)), sentence(rng, 4)]
                for r in range(rng.randint(5, 60))])
        else:
            ext = rng.choice(("txt", "md", "csv"))
            key = f"docs/text/note-{i:05d}.{ext}"
            data = (f"{token}\n" + "\n".join(sentence(rng, rng.randint(5, 20))
                                              for _ in range(rng.randint(5, 80)))).encode()
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append((path, key))
    return files


def make_big_pdf(path: Path, mb: int, seed: int = 2) -> Path:
    """A PDF of about ``mb`` MB: pages each holding one incompressible (random-pixel) JPEG."""
    import pymupdf
    from PIL import Image

    rng = random.Random(seed)
    side = 2400  # a 2400x2400 noise JPEG at quality 95 is ~12 MB
    doc = pymupdf.open()
    written = 0
    while written < mb * 1024 * 1024:
        image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        page = doc.new_page()
        page.insert_text((72, 40), f"big pdf page {doc.page_count} bigtoken", fontsize=10)
        page.insert_image(pymupdf.Rect(36, 60, 576, 760), stream=buffer.getvalue())
        written += buffer.tell()
    doc.save(path)
    doc.close()
    return path


def make_many_pages_pdf(path: Path, pages: int, seed: int = 3) -> Path:
    """A PDF with ``pages`` pages, each with a few lines of text."""
    import pymupdf

    rng = random.Random(seed)
    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page()
        page.insert_text((72, 72), f"page {number} manypagestoken " + sentence(rng, 12),
                         fontsize=10)
    doc.save(path, garbage=1, deflate=True)
    doc.close()
    return path
