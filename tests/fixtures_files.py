"""Builders of real files for the extractor tests: office documents made with the real libraries
(python-docx, openpyxl, python-pptx, odfpy), images with Pillow, PDFs with PyMuPDF, and the
hostile set (zip bombs, billion laughs, page-tree loops) crafted byte by byte.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pymupdf

#: a date every builder stamps into its document's properties
STAMP = dt.datetime(2024, 1, 2, 3, 4, 5)
TITLE = "四半期報告 Quarterly report"
AUTHOR = "山田太郎"
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n'.encode()
        for n in range(1, 10)
    )
    + b']>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b"<si><t>&lol9;</t></si></sst>"
)


def docx(path: Path) -> Path:
    """A Word document: heading, Japanese paragraph, table, header, footer, core properties."""
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("売上報告", level=1)
    document.add_paragraph("本日は晴天なり。 Sales grew in the third quarter.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "地域", "売上"
    table.cell(1, 0).text, table.cell(1, 1).text = "東京", "1200"
    section = document.sections[0]
    section.header.paragraphs[0].text = "社外秘 confidential header"
    section.footer.paragraphs[0].text = "footer text"
    props = document.core_properties
    props.title, props.author, props.created, props.modified = TITLE, AUTHOR, STAMP, STAMP
    document.save(str(path))
    return path


def xlsx(path: Path) -> Path:
    """A workbook of two sheets with shared strings, numbers and a boolean."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "売上"
    sheet.append(["地域", "金額", "達成"])
    sheet.append(["東京", 1200, True])
    sheet.append(["大阪", 800.5, False])
    second = book.create_sheet("Notes")
    second.append(["remember the milk"])
    book.properties.title, book.properties.creator = TITLE, AUTHOR
    book.properties.created = STAMP
    book.save(path)
    return path


def pptx(path: Path) -> Path:
    """A presentation of two slides (titles, body, speaker notes)."""
    import pptx as python_pptx

    deck = python_pptx.Presentation()
    for title, body, notes in (
        ("第一章 はじめに", "Introduction slide body", "speaker notes one"),
        ("Second slide", "結論とまとめ", "notes two"),
    ):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    deck.core_properties.title, deck.core_properties.author = TITLE, AUTHOR
    deck.core_properties.created = STAMP
    deck.save(str(path))
    return path


def _odf_meta(document: object) -> None:
    from odf import dc, meta

    document.meta.addElement(dc.Title(text=TITLE))  # type: ignore[attr-defined]
    document.meta.addElement(meta.InitialCreator(text=AUTHOR))  # type: ignore[attr-defined]
    document.meta.addElement(  # type: ignore[attr-defined]
        meta.CreationDate(text=STAMP.isoformat())
    )


def odt(path: Path) -> Path:
    """An OpenDocument text: heading, paragraph with a span and repeated spaces."""
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P, S, Span

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="見出し Heading"))
    paragraph = P(text="吾輩は猫である。")
    paragraph.addElement(Span(text=" Named"))
    paragraph.addElement(S(c=3))
    paragraph.addText("cat")
    document.text.addElement(paragraph)
    _odf_meta(document)
    document.save(str(path))
    return path


def ods(path: Path) -> Path:
    """An OpenDocument spreadsheet of two sheets."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    for name, rows in (("予算", [["項目", "金額"], ["家賃", "80000"]]), ("Other", [["x"]])):
        table = Table(name=name)
        for values in rows:
            row = TableRow()
            for value in values:
                cell = TableCell()
                cell.addElement(P(text=value))
                row.addElement(cell)
            table.addElement(row)
        document.spreadsheet.addElement(table)
    _odf_meta(document)
    document.save(str(path))
    return path


def odp(path: Path) -> Path:
    """An OpenDocument presentation of two slides with a text box each."""
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for text in ("最初のスライド", "second slide text"):
        page = Page(masterpagename=master)
        frame = Frame(width="20cm", height="5cm", x="1cm", y="1cm")
        box = TextBox()
        box.addElement(P(text=text))
        frame.addElement(box)
        page.addElement(frame)
        document.presentation.addElement(page)
    _odf_meta(document)
    document.save(str(path))
    return path


def rtf(path: Path) -> Path:
    """RTF as Japanese Word writes it: Shift_JIS bytes, ``\\u`` escapes, an ``\\info`` group."""
    body = "日本語の本文".encode("cp932")
    escaped = "".join(f"\\'{byte:02x}" for byte in body)
    path.write_bytes(
        b"{\\rtf1\\ansi\\ansicpg932\\deff0{\\fonttbl{\\f0\\fnil\\fcharset128 MS Mincho;}"
        b"{\\f1\\fswiss\\fcharset0 Arial;}}{\\colortbl;\\red0\\green0\\blue0;}"
        b"{\\info{\\title RTF \\u26085?\\u26412?}{\\author Taro}"
        b"{\\creatim\\yr2024\\mo1\\dy2\\hr3\\min4}}"
        b"{\\*\\generator Hidden 1.0;}\\f1 Hello {\\b bold} world\\par\\f0 "
        + escaped.encode("ascii")
        + b"\\par{\\pict\\pngblip 89504e470d0a}\\u12354?\\tab end\\par}"
    )
    return path


def eml(path: Path) -> Path:
    """A multipart mail: ISO-2022-JP-able subject, plain and HTML body, two attachments."""
    message = EmailMessage()
    message["Subject"] = "会議の議事録 minutes"
    message["From"] = "山田 <yamada@example.jp>"
    message["To"] = "team@example.jp"
    message["Date"] = "Tue, 02 Jan 2024 03:04:05 +0900"
    message.set_content("本文です。\nPlain body line.\n")
    message.add_alternative("<html><body><p>HTML 本文</p></body></html>", subtype="html")
    message.add_attachment("メモ attachment text".encode(), maintype="text", subtype="plain",
                           filename="memo.txt")  # fmt: skip
    message.add_attachment(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, maintype="image",
                           subtype="png", filename="画像.png")  # fmt: skip
    path.write_bytes(bytes(message))
    return path


def jpeg_with_exif(path: Path) -> Path:
    """A 64x48 gradient JPEG with camera make, model and date taken."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Canon", "EOS 5D", "2024:01:02 03:04:05"
    exif.get_ifd(0x8769)[0x9003] = "2023:12:31 23:59:58"
    image.save(path, format="JPEG", exif=exif)
    return path


def png(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    from PIL import Image

    Image.linear_gradient("L").resize(size).save(path, format="PNG")
    return path


def multipage_tiff(path: Path) -> Path:
    from PIL import Image

    frames = [Image.new("L", (32, 32), shade) for shade in (0, 128, 255)]
    frames[0].save(path, format="TIFF", save_all=True, append_images=frames[1:])
    return path


def text_image(lines: list[str], *, dpi: int = 300) -> pymupdf.Pixmap:
    """A grey pixmap with ``lines`` drawn in MuPDF's Japanese font (no text layer, just pixels)."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=200 + 40 * len(lines))
    for number, line in enumerate(lines):
        page.insert_text((40, 60 + 40 * number), line, fontname="japan", fontsize=14)
    pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    doc.close()
    return pixmap


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF whose pages are only images of text (what a scanner makes)."""
    doc = pymupdf.open()
    for lines in pages:
        pixmap = text_image(lines)
        page = doc.new_page(width=595, height=200 + 40 * len(lines))
        page.insert_image(page.rect, pixmap=pixmap)
    doc.save(path)
    doc.close()
    return path


def zip_of(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def replace_members(source: Path, target: Path, members: dict[str, bytes]) -> Path:
    """A copy of the zip ``source`` with some members' bytes replaced."""
    with zipfile.ZipFile(source) as old:
        originals = {info.filename: old.read(info) for info in old.infolist()}
    return zip_of(target, {**originals, **members})


def zip_bomb_docx(path: Path, *, entries: int = 60, entry_bytes: int = 10 * 1024 * 1024) -> Path:
    """A ``.docx`` that is a real Word package plus ``entries`` runs of zeros (~1000x each)."""
    base = docx(path.with_suffix(".base.docx"))
    zeros = b"\x00" * entry_bytes
    with zipfile.ZipFile(base) as old:
        members = {info.filename: old.read(info) for info in old.infolist()}
    members.update({f"word/media/padding{n}.bin": zeros for n in range(entries)})
    return zip_of(path, members)


def nested_zip_bomb_docx(path: Path, *, fan_out: int = 16) -> Path:
    """42.zip's shape inside a ``.docx``: an embedded zip of ``fan_out`` zips of zeros."""
    innermost = io.BytesIO()
    with zipfile.ZipFile(innermost, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0.dat", b"\x00" * (1024 * 1024))
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(fan_out):
            archive.writestr(f"{n}.zip", innermost.getvalue())
    base = docx(path.with_suffix(".base.docx"))
    return replace_members(base, path, {"word/embeddings/oleObject1.zip": layer.getvalue()})


def pdf_bytes(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF file with these objects (numbered from 1) and a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def page_tree_loop_pdf(path: Path) -> Path:
    """A PDF whose page tree points back at itself (Pages -> Pages -> Pages ...)."""
    path.write_bytes(
        pdf_bytes(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Kids [2 0 R] /Parent 2 0 R /Count 1 >>",
            ]
        )
    )
    return path


def deep_page_tree_pdf(path: Path, depth: int = 5000) -> Path:
    """A PDF whose single page sits ``depth`` levels down a chain of Pages nodes."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        number = level + 2
        objects.append(
            f"<< /Type /Pages /Kids [{number + 1} 0 R] /Parent {max(number - 1, 2)} 0 R "
            f"/Count 1 >>".encode()
        )
    objects.append(f"<< /Type /Page /Parent {depth + 1} 0 R /MediaBox [0 0 10 10] >>".encode())
    path.write_bytes(pdf_bytes(objects))
    return path
