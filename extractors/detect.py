"""Media type detection: magic bytes first, the file name's extension second.

A file whose extension lies is handled by what it is: a ``report.pdf`` that starts with the PNG
signature is ``image/png``.  The extension only decides between types the content cannot tell
apart from the first few KiB (a ZIP that may be a ``.docx``, an OLE2 file that may be a ``.xls``,
CSV versus plain text) and names types we recognise by name alone (DocuWorks).
"""

from __future__ import annotations

import codecs
import logging
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

#: bytes of the file's head that ``detect_media_type`` expects (it works with fewer)
HEAD_BYTES = 8192
#: bytes from the start within which ``%PDF-`` may appear (Acrobat tolerates leading junk)
PDF_MARKER_WINDOW = 1024
#: characters after ``<?xml`` searched for an HTML root
MARKUP_WINDOW = 1024
#: bytes of a zip member (``mimetype``, ``[Content_Types].xml``) read at most when refining
MAX_ZIP_MEMBER_BYTES = 1024 * 1024

PDF = "application/pdf"
ZIP = "application/zip"
OLE = "application/x-ole-storage"
OCTET_STREAM = "application/octet-stream"
EMPTY = "application/x-empty"
TEXT = "text/plain"
HTML = "text/html"
XML = "application/xml"
EML = "message/rfc822"
DOCUWORKS = "application/vnd.fujixerox.docuworks"
DOCUWORKS_BINDER = "application/vnd.fujixerox.docuworks.binder"

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOCM = "application/vnd.ms-word.document.macroenabled.12"
XLSM = "application/vnd.ms-excel.sheet.macroenabled.12"
PPTM = "application/vnd.ms-powerpoint.presentation.macroenabled.12"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"

#: extensions of ZIP-based documents and their media types
_ZIP_DOC_TYPES: dict[str, str] = {
    "docx": DOCX,
    "xlsx": XLSX,
    "pptx": PPTX,
    "docm": DOCM,
    "xlsm": XLSM,
    "pptm": PPTM,
    "odt": ODT,
    "ods": ODS,
    "odp": ODP,
}
#: ZIP-based document types ``detect_media_type`` may return from the extension alone
ZIP_DOCUMENT_TYPES = frozenset(_ZIP_DOC_TYPES.values())
#: extensions of OLE2 compound documents and their media types
_OLE_DOC_TYPES: dict[str, str] = {
    "doc": "application/msword",
    "dot": "application/msword",
    "xls": "application/vnd.ms-excel",
    "xlt": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "pot": "application/vnd.ms-powerpoint",
    "pps": "application/vnd.ms-powerpoint",
}
#: extensions of text files that get a more specific type than ``text/plain``
_TEXT_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "tab": "text/tab-separated-values",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "htm": HTML,
    "html": HTML,
    "xhtml": HTML,
    "xml": XML,
}
#: types recognised by extension only (no trustworthy magic is known to us)
_NAME_ONLY_TYPES: dict[str, str] = {
    "xdw": DOCUWORKS,
    "xbd": DOCUWORKS_BINDER,
}
#: everything ``guess_media_type_from_name`` knows
_EXTENSION_TYPES: dict[str, str] = {
    "pdf": PDF,
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "zip": ZIP,
    "rtf": "application/rtf",
    "gz": "application/gzip",
    "eml": EML,
    "txt": TEXT,
    "text": TEXT,
    "log": TEXT,
    **_ZIP_DOC_TYPES,
    **_OLE_DOC_TYPES,
    **_TEXT_TYPES,
    **_NAME_ONLY_TYPES,
}

#: (signature, offset, media type) checked in order against the head
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"{\\rtf", 0, "application/rtf"),
    (b"\x1f\x8b", 0, "application/gzip"),
)
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BOM_CODECS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
#: header names that make a ``.eml`` file's first line look like a mail header
_MAIL_HEADERS = frozenset(
    {
        "from", "to", "cc", "subject", "date", "received", "return-path", "message-id",
        "mime-version", "delivered-to", "reply-to", "sender", "x-mailer", "content-type",
    }
)  # fmt: skip
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]")
#: C0 control characters other than whitespace, ESC and SUB (DOS end of file)
_CONTROL = re.compile("[\x01-\x08\x0e-\x19\x1c-\x1f\x7f]")
#: largest share of control characters a text file may contain
_MAX_CONTROL_RATIO = 0.01

#: ``[Content_Types].xml`` main-part content types and the document media types they mean
_OOXML_MAIN_PARTS: dict[str, str] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.ms-word.document.macroenabled.main+xml": DOCM,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": XLSM,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": PPTX,
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": PPTM,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.template"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow"
    ),
    "application/vnd.ms-excel.sheet.binary.macroenabled.main": (
        "application/vnd.ms-excel.sheet.binary.macroenabled.12"
    ),
}
#: OOXML top-level folders, the macro-free type and the macro-enabled type
_OOXML_FOLDERS: tuple[tuple[str, str, str], ...] = (
    ("word/", DOCX, DOCM),
    ("xl/", XLSX, XLSM),
    ("ppt/", PPTX, PPTM),
)
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")


def extension_of(filename: str) -> str:
    """The lower-case extension of ``filename`` without the dot, ``""`` if it has none."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def guess_media_type_from_name(filename: str) -> str:
    """Media type from the extension alone (before any byte is read); never raises.

    Unknown extensions give ``application/octet-stream``.
    """
    return _EXTENSION_TYPES.get(extension_of(filename), OCTET_STREAM)


def queue_kind(media_type: str) -> str:
    """Which extract queue a type goes to: ``"pdf"``, ``"ocr"`` (images: always OCR, the
    CPU-heavy kind that scales on its own) or ``"other"``."""
    base = media_type.split(";")[0].strip().lower()
    if base == PDF:
        return "pdf"
    return "ocr" if base.startswith("image/") else "other"


def detect_media_type(head: bytes, filename: str) -> str:
    """Media type of a file from its first bytes (up to ``HEAD_BYTES``) and its name; never raises.

    Content decides; the extension only refines (ZIP/OLE2 documents, text subtypes) or names
    binary types we cannot recognise by content (DocuWorks ``.xdw``/``.xbd``).  An empty head is
    ``application/x-empty``.  Returned media types are lower-case, without parameters.
    """
    if not head:
        return EMPTY
    ext = extension_of(filename)
    if b"%PDF-" in head[:PDF_MARKER_WINDOW]:
        return PDF
    for signature, offset, media_type in _SIGNATURES:
        if head.startswith(signature, offset):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(_ZIP_SIGNATURES):
        return _ZIP_DOC_TYPES.get(ext, ZIP)
    if head.startswith(_OLE_SIGNATURE):
        return _OLE_DOC_TYPES.get(ext, OLE)
    text = _decode_head(head)
    if text is None:
        return _NAME_ONLY_TYPES.get(ext, OCTET_STREAM)
    return _text_media_type(text, ext)


def _decode_head(head: bytes) -> str | None:
    """The head as text if it looks like text (BOM, or no NUL and a strict decode), else None."""
    for bom, codec in _BOM_CODECS:
        if head.startswith(bom):
            return _decode_prefix(head[len(bom) :], codec, strict=False)
    if b"\x00" in head:
        return None
    for codec in ("utf-8", "cp932", "euc_jp"):
        text = _decode_prefix(head, codec, strict=True)
        if text is not None and len(_CONTROL.findall(text)) <= _MAX_CONTROL_RATIO * len(text):
            return text
    return None


def _decode_prefix(data: bytes, codec: str, *, strict: bool) -> str | None:
    """Decode ``data`` that may end in the middle of a character (it is a file's head)."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict" if strict else "replace")
    try:
        return decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return None


def _text_media_type(text: str, ext: str) -> str:
    """Type of a head already known to be text: markup by content, else by extension."""
    start = text.lstrip("\ufeff \t\r\n").lower()
    if start.startswith(("<!doctype html", "<html")):
        return HTML
    if start.startswith("<?xml"):
        window = start[:MARKUP_WINDOW]
        return HTML if ("<!doctype html" in window or "<html" in window) else XML
    if ext == "eml" and _looks_like_mail(text):
        return EML
    return _TEXT_TYPES.get(ext, TEXT)


def _looks_like_mail(text: str) -> bool:
    """The text starts with RFC 5322 header lines including at least one well-known header."""
    lines = text.lstrip("\ufeff").splitlines()[:40]
    known = 0
    for line in lines:
        if not line.strip():
            break
        if line[:1] in (" ", "\t"):
            continue  # folded header continuation
        match = _HEADER_LINE.match(line)
        if match is None:
            return False
        known += match.group(1).lower() in _MAIL_HEADERS
    return known > 0


def refine_zip_media_type(path: Path, fallback: str) -> str:
    """Decide what a ZIP-based file is from its member list, without extracting anything.

    Reads at most ``MAX_ZIP_MEMBER_BYTES`` of ``mimetype`` (ODF, EPUB) or ``[Content_Types].xml``
    (OOXML), else looks for ``word/``, ``xl/``, ``ppt/`` folders.  A readable ZIP with none of
    these is ``application/zip``; an unreadable one returns ``fallback``.  Never raises.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            declared = _declared_zip_type(archive, set(names))
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        RuntimeError,  # encrypted member
        NotImplementedError,  # unsupported compression method
        zlib.error,
    ) as exc:
        logger.debug("cannot read zip %s: %s", path, exc)
        return fallback
    if declared:
        return declared
    macro = fallback in (DOCM, XLSM, PPTM)
    for folder, plain, with_macros in _OOXML_FOLDERS:
        if any(name.startswith(folder) for name in names):
            return with_macros if macro else plain
    return ZIP


def _declared_zip_type(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    """The type a ZIP declares in ``mimetype`` or ``[Content_Types].xml``, if any."""
    if "mimetype" in names:
        declared = _read_member(archive, "mimetype").decode("ascii", "replace").strip().lower()
        if _MEDIA_TYPE.match(declared):
            return declared
    if "[Content_Types].xml" in names:
        return _ooxml_main_type(_read_member(archive, "[Content_Types].xml"))
    return None


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """At most ``MAX_ZIP_MEMBER_BYTES`` of one member (a bigger one reads as empty)."""
    with archive.open(name) as member:
        data = member.read(MAX_ZIP_MEMBER_BYTES + 1)
    return b"" if len(data) > MAX_ZIP_MEMBER_BYTES else data


def _ooxml_main_type(content_types_xml: bytes) -> str | None:
    """The document type named by the main part's ``Override`` in ``[Content_Types].xml``."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(content_types_xml)
    except (ParseError, DefusedXmlException, ValueError):
        return None
    for element in root.iter():
        if element.tag.rpartition("}")[2] != "Override":
            continue
        part_type = element.get("ContentType", "").strip().lower()
        if part_type in _OOXML_MAIN_PARTS:
            return _OOXML_MAIN_PARTS[part_type]
    return None
