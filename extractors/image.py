"""Images (png, jpeg, tiff, gif, webp) with Pillow: size, EXIF and a perceptual hash.

No text comes from here (OCR is ``extractors.ocr``).  Pillow's decompression-bomb check runs with
``Limits.max_image_pixels``: an image above it is ``HostileFile``, never decoded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from extractors.base import Extraction, Limits
from pipeline.errors import CorruptFile, HostileFile

logger = logging.getLogger(__name__)

#: version the pipeline is tested with
PILLOW_REQUIREMENT = "pillow==13.0.0"
#: side of the grey thumbnail the difference hash is computed on (width is one more)
HASH_SIZE = 8
#: EXIF tags (IFD0): make, model, date-time, orientation, software
_IFD0 = {0x010F: "camera_make", 0x0110: "camera_model", 0x0132: "modified", 0x0131: "software"}
#: EXIF sub-IFD pointer and its date-time-original tag
_EXIF_IFD, _DATE_TAKEN = 0x8769, 0x9003
#: characters kept of one EXIF string
MAX_EXIF_CHARS = 200


def import_pillow() -> ModuleType:
    """Import ``PIL.Image``; raises ``RuntimeError`` with the install command if it is missing."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            f"image extraction needs Pillow: pip install {PILLOW_REQUIREMENT}"
        ) from exc
    return Image


@contextmanager
def open_image(path: Path, limits: Limits) -> Iterator[Any]:
    """Open ``path`` with Pillow under the pixel limit.

    Raises ``HostileFile`` above ``limits.max_image_pixels`` and ``CorruptFile`` if Pillow cannot
    read it.
    """
    image_module = import_pillow()
    image_module.MAX_IMAGE_PIXELS = limits.max_image_pixels  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error", image_module.DecompressionBombWarning)
        try:
            image = image_module.open(path)
        except (image_module.DecompressionBombError, image_module.DecompressionBombWarning) as exc:
            raise HostileFile(f"decompression bomb: {exc}") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise CorruptFile(f"unreadable image: {exc}") from exc
        with image:
            yield image


def difference_hash(image: Any) -> str:
    """64-bit dHash as 16 hex digits: each bit says if a pixel is brighter than its right one.

    Raises ``OSError``/``ValueError`` if the pixels cannot be decoded.
    """
    image.draft("L", (HASH_SIZE * 16, HASH_SIZE * 16))  # JPEG: decode at a fraction of the size
    grey = image.convert("L").resize((HASH_SIZE + 1, HASH_SIZE), resample=1)  # LANCZOS
    pixels = grey.tobytes()
    bits = 0
    for row in range(HASH_SIZE):
        for column in range(HASH_SIZE):
            left = pixels[row * (HASH_SIZE + 1) + column]
            right = pixels[row * (HASH_SIZE + 1) + column + 1]
            bits = (bits << 1) | (left > right)
    return f"{bits:016x}"


def _exif_date(value: Any) -> str | None:
    """``2024:01:02 03:04:05`` as ISO 8601, ``None`` if it does not parse."""
    try:
        return datetime.strptime(str(value).strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _exif(image: Any) -> dict[str, Any]:
    """Camera make and model, date taken, modified date and software from EXIF, if any."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as exc:
        logger.debug("EXIF unreadable: %s", exc)
        return {}
    found: dict[str, Any] = {}
    for tag, key in _IFD0.items():
        value = exif.get(tag)
        if value is None:
            continue
        found[key] = _exif_date(value) if key == "modified" else str(value).strip("\x00 ")
    taken = _exif_date(sub.get(_DATE_TAKEN)) if sub.get(_DATE_TAKEN) else None
    if taken:
        found["taken"] = taken
    return {k: v[:MAX_EXIF_CHARS] for k, v in found.items() if isinstance(v, str) and v}


def extract_image(path: Path, *, content_type: str, limits: Limits) -> Extraction:
    """Size, mode, frames, EXIF and ``metadata["phash"]`` (64-bit dHash, hex) of an image.

    ``pages`` is the frame count of a multi-page TIFF; the text stays empty until OCR.
    Raises ``HostileFile`` (more pixels than ``limits.max_image_pixels``) and ``CorruptFile``.
    """
    image_module = import_pillow()
    with open_image(path, limits) as image:
        width, height = image.size
        frames = int(getattr(image, "n_frames", 1) or 1)
        metadata: dict[str, Any] = {
            "width": width, "height": height, "mode": image.mode,
            "format": image.format, **_exif(image),
        }  # fmt: skip
        if frames > 1:
            metadata["frames"] = frames
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", image_module.DecompressionBombWarning)
                metadata["phash"] = difference_hash(image)
        except image_module.DecompressionBombError as exc:
            raise HostileFile(f"decompression bomb: {exc}") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise CorruptFile(f"image pixels unreadable: {exc}") from exc
    extraction = Extraction(content_type=content_type, metadata=metadata)
    extraction.pages = frames if content_type == "image/tiff" else None
    return extraction
