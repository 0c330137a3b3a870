"""Checks on an uploaded training photo, free of I/O: bytes in, a verdict and clean bytes out.

The type comes from the magic bytes, never from the client's content type or file name. The
declared size is checked from the header before any pixel is decoded (decompression bombs).
What leaves is always a JPEG re-encoded from decoded pixels, with the EXIF orientation applied
and no metadata at all: nothing the client appended (a ZIP, HTML, GPS EXIF, an ICC profile,
XMP, comments) can reach storage or the trainer.

Data after the end of the image is a warning (``trailing_data``), not a rejection: phones
append their own trailers (motion-photo videos, multi-picture secondary JPEGs) to ordinary
photos, and the re-encoding drops them anyway.
"""

from __future__ import annotations

import enum
import io
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageOps

# Registers the HEIF decoder with Pillow (a plugin registration, no I/O).
pillow_heif.register_heif_opener()


class PhotoStatus(enum.StrEnum):
    """Where a photo is (the CHECK on ``photos.status``): an open upload slot, then the
    verdict of :func:`validate_photo`."""

    UPLOADING = "uploading"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_WARNINGS = "accepted_with_warnings"
    REJECTED = "rejected"


# A verdict: every status but UPLOADING.
Status = Literal["accepted", "accepted_with_warnings", "rejected"]

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
HEIC = "image/heic"

# Content type → the only Pillow decoder allowed to open it.
_PILLOW_FORMAT = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", HEIC: "HEIF"}
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"mif1", b"msf1"})
# Image formats we recognise but do not take (so the client hears "wrong type", not "junk").
_OTHER_IMAGE_MAGIC = (b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00")

ANALYSIS_SHORT_SIDE = 512  # blur is measured at this scale so the score ignores resolution
FACE_LONG_SIDE = 1024  # face detection runs on at most this many pixels along the long side
JPEG_QUALITY = 92

# Reasons that always reject; the face reasons reject only when one face is required.
_ALWAYS_REJECT = frozenset({"too_small", "duplicate"})
_FACE_REASONS = frozenset({"no_face", "several_faces"})


@dataclass(frozen=True)
class PhotoVerdict:
    """The outcome of :func:`validate_photo`.

    ``reasons`` holds stable codes: ``not_an_image``, ``unsupported_type``, ``too_many_pixels``,
    ``truncated``, ``too_small``, ``duplicate``, ``no_face``, ``several_faces`` (reject), and
    ``blurry``, ``trailing_data`` (warn; the face codes warn too when a face is not required).
    Measurements are ``None`` when the photo was rejected before they could be taken;
    ``normalized`` is ``None`` exactly when the photo is rejected.
    """

    status: Status
    reasons: tuple[str, ...]
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    phash: str | None = None
    blur_score: float | None = None
    faces: int | None = None
    normalized: bytes | None = None


def validate_photo(
    data: bytes,
    *,
    known_hashes: Collection[str] = (),
    require_one_face: bool = True,
    min_short_side: int = 512,
    max_pixels: int = 40_000_000,
    blur_threshold: float = 60.0,
    duplicate_distance: int = 6,
) -> PhotoVerdict:
    """Judge one uploaded photo and, unless it is rejected, return it as a clean JPEG.

    ``known_hashes`` are the pHashes of the model's other photos: a photo within
    ``duplicate_distance`` bits of one of them is a duplicate.
    """
    content_type = sniff_content_type(data)
    if content_type is None:
        reason = "unsupported_type" if data.startswith(_OTHER_IMAGE_MAGIC) else "not_an_image"
        return PhotoVerdict("rejected", (reason,))

    try:
        img = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[content_type]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return PhotoVerdict("rejected", ("too_many_pixels",), content_type)
    except (OSError, SyntaxError, ValueError, EOFError):
        return PhotoVerdict("rejected", ("truncated",), content_type)
    # Image.open has read the header only: refuse before allocating the pixels.
    if img.width * img.height > max_pixels:
        return PhotoVerdict("rejected", ("too_many_pixels",), content_type)

    try:
        img.load()
        rgb = _upright_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return PhotoVerdict("rejected", ("too_many_pixels",), content_type)
    except (OSError, SyntaxError, ValueError, EOFError):
        return PhotoVerdict("rejected", ("truncated",), content_type)

    width, height = rgb.size
    gray = rgb.convert("L")
    phash = perceptual_hash(gray)
    blur = blur_score(gray)
    faces = count_faces(gray)

    reasons: list[str] = []
    if _has_trailing_data(content_type, data):
        reasons.append("trailing_data")
    if min(width, height) < min_short_side:
        reasons.append("too_small")
    if any(hamming(phash, known) <= duplicate_distance for known in known_hashes):
        reasons.append("duplicate")
    if faces == 0:
        reasons.append("no_face")
    elif faces > 1:
        reasons.append("several_faces")
    if blur < blur_threshold:
        reasons.append("blurry")

    rejecting = _ALWAYS_REJECT | (_FACE_REASONS if require_one_face else frozenset())
    if rejecting.intersection(reasons):
        status: Status = "rejected"
    else:
        status = "accepted_with_warnings" if reasons else "accepted"
    return PhotoVerdict(
        status=status,
        reasons=tuple(reasons),
        content_type=content_type,
        width=width,
        height=height,
        phash=phash,
        blur_score=blur,
        faces=faces,
        normalized=None if status == "rejected" else _encode_clean_jpeg(rgb),
    )


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two 16-hex-digit perceptual hashes."""
    return (_hash_bits(a) ^ _hash_bits(b)).bit_count()


def sniff_content_type(data: bytes) -> str | None:
    """The image type the bytes really are (JPEG, PNG, WebP, HEIC), or ``None``."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[4:8] == b"ftyp" and _heif_brands(data) & _HEIF_BRANDS:
        return HEIC
    return None


def perceptual_hash(gray: Image.Image) -> str:
    """DCT pHash: 32x32 grayscale → DCT → the 8x8 lowest frequencies after the DC row and
    column, each compared to their median → 64 bits as 16 hex digits."""
    small = np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float32)
    low = cv2.dct(small)[1:9, 1:9]
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):016x}"


def blur_score(gray: Image.Image) -> float:
    """Variance of the Laplacian at a short side of 512 px (higher is sharper)."""
    pixels = _as_array(_scaled(gray, ANALYSIS_SHORT_SIDE / min(gray.size)))
    return float(cv2.Laplacian(pixels, cv2.CV_64F).var())


def count_faces(gray: Image.Image) -> int:
    """Frontal faces at least 1/8 of the short side, by OpenCV's bundled Haar cascade."""
    scale = min(1.0, FACE_LONG_SIDE / max(gray.size))
    pixels = _as_array(_scaled(gray, scale))
    side = min(pixels.shape) // 8
    found = _face_cascade().detectMultiScale(
        pixels, scaleFactor=1.1, minNeighbors=5, minSize=(side, side)
    )
    return len(found)


def _upright_rgb(img: Image.Image) -> Image.Image:
    upright = ImageOps.exif_transpose(img)
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return upright.convert("RGB")


def _encode_clean_jpeg(rgb: Image.Image) -> bytes:
    # A fresh image from raw pixels has an empty ``info``, so Pillow has no EXIF, ICC profile,
    # XMP or comment to carry over into the output.
    fresh = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    out = io.BytesIO()
    fresh.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _scaled(gray: Image.Image, scale: float) -> Image.Image:
    if scale == 1.0:
        return gray
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    return gray.resize(size, Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX)


def _as_array(gray: Image.Image) -> npt.NDArray[np.uint8]:
    return np.asarray(gray, dtype=np.uint8)


_per_thread = threading.local()


def _face_cascade() -> cv2.CascadeClassifier:
    """This thread's classifier: a CascadeClassifier is not safe to share between threads
    (photos are validated in worker threads, several at once), so each thread loads its own."""
    cascade: cv2.CascadeClassifier | None = getattr(_per_thread, "cascade", None)
    if cascade is None:
        cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades  # type: ignore[attr-defined]
            + "haarcascade_frontalface_default.xml"
        )
        if cascade.empty():
            raise RuntimeError("OpenCV's frontal face cascade is missing")
        _per_thread.cascade = cascade
    return cascade


def _hash_bits(phash: str) -> int:
    if len(phash) != 16:
        raise ValueError(f"a perceptual hash has 16 hex digits, got {len(phash)}")
    return int(phash, 16)


def _heif_brands(data: bytes) -> set[bytes]:
    box_end = min(int.from_bytes(data[:4], "big"), len(data))
    # Major brand at 8, minor version at 12, compatible brands from 16 to the box end.
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, box_end - 3, 4))
    return brands


def _has_trailing_data(content_type: str, data: bytes) -> bool:
    end = {JPEG: _jpeg_end, PNG: _png_end, WEBP: _webp_end, HEIC: _isobmff_end}[content_type](data)
    # Some encoders pad with zeros; anything else after the image is someone else's payload.
    return end is not None and bool(data[end:].strip(b"\x00"))


def _jpeg_end(data: bytes) -> int | None:
    """Offset just past the EOI marker of the first image, or ``None`` if it is cut short."""
    n = len(data)
    i = 2
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return i + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # entropy-coded data runs to the next marker other than RSTn
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return None
                following = data[j + 1]
                if following == 0x00 or following == 0xFF or 0xD0 <= following <= 0xD7:
                    i = j + 1
                    continue
                i = j
                break
    return None


def _png_end(data: bytes) -> int | None:
    i = 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        chunk_type = data[i + 4 : i + 8]
        i += 12 + length
        if chunk_type == b"IEND":
            return i if i <= len(data) else None
    return None


def _webp_end(data: bytes) -> int | None:
    size = int.from_bytes(data[4:8], "little")
    end = 8 + size + (size & 1)
    return end if end <= len(data) else None


def _isobmff_end(data: bytes) -> int | None:
    """Offset of the first byte that is not part of a well-formed top-level box."""
    i = 0
    while i + 8 <= len(data):
        box_type = data[i + 4 : i + 8]
        if not all(0x20 <= c < 0x7F for c in box_type):
            return i
        size = int.from_bytes(data[i : i + 4], "big")
        if size == 0:  # the box runs to the end of the file
            return len(data)
        if size == 1 and i + 16 <= len(data):
            size = int.from_bytes(data[i + 8 : i + 16], "big")
        if size < 8:
            return i
        if i + size > len(data):
            return None
        i += size
    return i
