"""Photo validation: real type, bombs, corruption, polyglots, size, duplicates, faces, blur,
and metadata-free upright output."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms, ImageFilter
from skimage import data as skimage_data

from visiona.training.domain.photo import (
    PhotoVerdict,
    count_faces,
    hamming,
    sniff_content_type,
    validate_photo,
)

GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F


@pytest.fixture(scope="module")
def face() -> Image.Image:
    """NASA's public-domain portrait of astronaut Eileen Collins, 512x512."""
    return Image.fromarray(skimage_data.astronaut())  # type: ignore[no-untyped-call]


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header for a huge RGB image with a token IDAT: decoding it would fail."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def jpeg_markers(jpeg: bytes) -> list[int]:
    """The markers of a JPEG's header segments, up to the start of scan."""
    markers, i = [], 2
    while jpeg[i + 1] != 0xDA:
        markers.append(jpeg[i + 1])
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    return markers


def assert_accepted(verdict: PhotoVerdict) -> bytes:
    assert verdict.status == "accepted", verdict.reasons
    assert verdict.normalized is not None
    return verdict.normalized


def test_a_sharp_single_face_photo_is_accepted_as_a_jpeg(face: Image.Image) -> None:
    verdict = validate_photo(encode(face))

    normalized = assert_accepted(verdict)
    assert verdict.reasons == ()
    assert (verdict.content_type, verdict.width, verdict.height) == ("image/jpeg", 512, 512)
    assert verdict.faces == 1
    assert verdict.blur_score is not None and verdict.blur_score > 60
    assert verdict.phash is not None and len(verdict.phash) == 16
    with Image.open(io.BytesIO(normalized)) as out:
        assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (512, 512))


def test_the_same_photo_again_is_a_duplicate(face: Image.Image) -> None:
    first = validate_photo(encode(face))
    assert first.phash is not None

    # Re-encoded at another quality: different bytes, same picture.
    again = validate_photo(encode(face, quality=60), known_hashes=[first.phash])

    assert again.status == "rejected"
    assert again.reasons == ("duplicate",)
    assert again.normalized is None


def test_a_different_photo_is_not_a_duplicate_of_a_known_one(face: Image.Image) -> None:
    noise = validate_photo(encode(random_noise()), require_one_face=False)
    assert noise.phash is not None

    assert_accepted(validate_photo(encode(face), known_hashes=[noise.phash]))


def test_a_photo_with_a_short_side_under_the_minimum_is_too_small(face: Image.Image) -> None:
    verdict = validate_photo(encode(face.resize((400, 400))))

    assert verdict.status == "rejected"
    assert "too_small" in verdict.reasons
    assert verdict.normalized is None


def random_noise() -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (640, 640, 3), dtype=np.uint8))


def test_a_photo_without_a_face_is_rejected_when_one_is_required() -> None:
    verdict = validate_photo(encode(random_noise()))

    assert (verdict.status, verdict.reasons, verdict.faces) == ("rejected", ("no_face",), 0)


def test_a_photo_without_a_face_only_warns_when_no_face_is_required() -> None:
    verdict = validate_photo(encode(random_noise()), require_one_face=False)

    assert (verdict.status, verdict.reasons) == ("accepted_with_warnings", ("no_face",))
    assert verdict.normalized is not None


def test_a_blurred_face_is_accepted_with_a_blurry_warning(face: Image.Image) -> None:
    verdict = validate_photo(encode(face.filter(ImageFilter.GaussianBlur(3))))

    assert (verdict.status, verdict.reasons) == ("accepted_with_warnings", ("blurry",))
    assert verdict.blur_score is not None and verdict.blur_score < 60
    assert verdict.normalized is not None


def test_two_faces_side_by_side_are_several_faces(face: Image.Image) -> None:
    canvas = Image.new("RGB", (1024, 512))
    canvas.paste(face, (0, 0))
    canvas.paste(face, (512, 0))

    verdict = validate_photo(encode(canvas))

    assert (verdict.status, verdict.reasons, verdict.faces) == ("rejected", ("several_faces",), 2)


@pytest.mark.parametrize(
    "payload",
    [b"", b"hello", b"<!DOCTYPE html><html><script>alert(1)</script></html>", b"%PDF-1.7\n"],
)
def test_bytes_that_are_no_image_are_rejected(payload: bytes) -> None:
    assert validate_photo(payload) == PhotoVerdict("rejected", ("not_an_image",))


def test_an_image_type_we_do_not_take_is_unsupported(face: Image.Image) -> None:
    assert validate_photo(encode(face, "GIF")) == PhotoVerdict("rejected", ("unsupported_type",))


def test_the_client_cannot_pass_html_off_as_a_jpeg_by_its_first_bytes() -> None:
    # Two of the three JPEG magic bytes, then markup.
    verdict = validate_photo(b"\xff\xd8<html><body>hi</body></html>")

    assert verdict.reasons == ("not_an_image",)


def test_a_cut_off_jpeg_is_truncated(face: Image.Image) -> None:
    whole = encode(face)

    verdict = validate_photo(whole[: len(whole) // 2])

    assert (verdict.status, verdict.reasons) == ("rejected", ("truncated",))
    assert verdict.content_type == "image/jpeg"


def test_a_huge_declared_size_is_refused_from_the_header_alone() -> None:
    # 8000x6000 is under Pillow's own bomb limit, so this is our check; the IDAT is a token, so
    # decoding first would have reported ``truncated`` instead.
    verdict = validate_photo(png_declaring(8000, 6000))

    assert (verdict.status, verdict.reasons) == ("rejected", ("too_many_pixels",))


def test_a_png_declaring_ten_gigapixels_is_too_many_pixels() -> None:
    verdict = validate_photo(png_declaring(100_000, 100_000), max_pixels=10**12)

    assert (verdict.status, verdict.reasons) == ("rejected", ("too_many_pixels",))


def test_a_jpeg_zip_polyglot_warns_and_the_zip_never_leaves(face: Image.Image) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", "<script>alert(1)</script>")
    polyglot = encode(face) + archive.getvalue()
    assert zipfile.is_zipfile(io.BytesIO(polyglot))

    verdict = validate_photo(polyglot)

    assert (verdict.status, verdict.reasons) == ("accepted_with_warnings", ("trailing_data",))
    assert verdict.normalized is not None
    assert b"PK\x03\x04" not in verdict.normalized
    assert b"<script>" not in verdict.normalized


def test_a_png_with_data_after_iend_warns(face: Image.Image) -> None:
    verdict = validate_photo(encode(face, "PNG") + b"<html>payload</html>")

    assert (verdict.status, verdict.reasons) == ("accepted_with_warnings", ("trailing_data",))
    assert verdict.normalized is not None and b"payload" not in verdict.normalized


@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_are_accepted_and_normalized_to_jpeg(
    face: Image.Image, fmt: str, content_type: str
) -> None:
    verdict = validate_photo(encode(face, fmt, quality=95))

    normalized = assert_accepted(verdict)
    assert verdict.content_type == content_type
    assert normalized.startswith(b"\xff\xd8\xff")


def test_a_transparent_png_is_flattened_onto_white(face: Image.Image) -> None:
    rgba = face.convert("RGBA")
    rgba.putalpha(255)
    rgba.paste((0, 0, 0, 0), (0, 0, 40, 40))

    normalized = assert_accepted(validate_photo(encode(rgba, "PNG")))

    with Image.open(io.BytesIO(normalized)) as out:
        corner = out.convert("RGB").getpixel((5, 5))
    assert isinstance(corner, tuple) and min(corner) > 240


def test_heic_is_detected_and_decoded(face: Image.Image) -> None:
    pillow_heif.register_heif_opener()
    heic = encode(face, "HEIF", quality=90)
    assert sniff_content_type(heic) == "image/heic"

    verdict = validate_photo(heic)

    assert_accepted(verdict)
    assert (verdict.content_type, verdict.width, verdict.height) == ("image/heic", 512, 512)


def test_gps_exif_icc_and_comments_are_stripped(face: Image.Image) -> None:
    exif = Image.Exif()
    exif[MAKE] = "Spy Camera"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = encode(face, exif=exif, icc_profile=icc, comment=b"secret")
    with Image.open(io.BytesIO(tagged)) as original:
        assert original.getexif().get_ifd(GPS_IFD)  # the input really carries GPS

    normalized = assert_accepted(validate_photo(tagged))

    with Image.open(io.BytesIO(normalized)) as out:
        assert len(out.getexif()) == 0
        assert not out.getexif().get_ifd(GPS_IFD)
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(out.info)
    # Only APP0 (JFIF) and the tables needed to decode: no APP1..APP15, no COM segment.
    assert all(m == 0xE0 or not (0xE1 <= m <= 0xEF or m == 0xFE) for m in jpeg_markers(normalized))
    assert b"Exif\x00\x00" not in normalized
    assert b"Spy Camera" not in normalized and b"secret" not in normalized


def test_exif_orientation_is_applied(face: Image.Image) -> None:
    upright = Image.new("RGB", (512, 768), (128, 128, 128))
    upright.paste(face, (0, 0))
    # Orientation 6: the stored pixels must be turned 90° clockwise to be seen upright.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    tagged = encode(stored, exif=exif)

    verdict = validate_photo(tagged)

    # The face is found only if the rotation went the right way.
    normalized = assert_accepted(verdict)
    assert (verdict.width, verdict.height) == (512, 768)
    with Image.open(io.BytesIO(normalized)) as out:
        assert out.size == (512, 768)
        assert ORIENTATION not in out.getexif()


def test_hamming_counts_differing_bits() -> None:
    assert hamming("0" * 16, "0" * 16) == 0
    assert hamming("0" * 16, "f" * 16) == 64
    assert hamming("8000000000000001", "0000000000000000") == 2


def test_hamming_refuses_a_malformed_hash() -> None:
    with pytest.raises(ValueError):
        hamming("abc", "0" * 16)


def test_faces_are_counted_right_from_many_threads_at_once() -> None:
    # Photos are validated in worker threads, several at once; one OpenCV classifier shared
    # between threads miscounts photos of different sizes (a third of them, measured).
    from concurrent.futures import ThreadPoolExecutor

    from visiona.cli.samples import FACE_INDICES, face_photo

    photos = [Image.open(io.BytesIO(face_photo(i))).convert("L") for i in FACE_INDICES]
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda k: count_faces(photos[k % len(photos)]), range(160)))
    assert counts == [1] * 160
