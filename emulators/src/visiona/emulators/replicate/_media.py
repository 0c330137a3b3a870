"""Files the emulator makes and checks: output images, LoRA weights, training image zips."""

from __future__ import annotations

import hashlib
import io
import secrets
import tarfile
import zipfile

from PIL import Image, ImageDraw

OUTPUT_FORMATS = {
    "webp": ("WEBP", "image/webp"),
    "jpg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# The long side of an output; the real model makes about a megapixel, kept small here.
_LONG_SIDE = 96


def output_size(aspect_ratio: str) -> tuple[int, int]:
    """Width and height for an ``"w:h"`` aspect ratio (anything else is square)."""
    try:
        w, h = (int(part) for part in aspect_ratio.split(":", 1))
    except ValueError:
        w = h = 1
    if w <= 0 or h <= 0:
        w = h = 1
    scale = _LONG_SIDE / max(w, h)
    return max(8, round(w * scale)), max(8, round(h * scale))


def render_image(prompt: str, index: int, output_format: str, aspect_ratio: str = "1:1") -> bytes:
    """A small gradient whose colours come from the prompt and the output index, so outputs of
    one prediction differ and the same request renders the same pixels; its shape follows
    ``aspect_ratio``."""
    digest = hashlib.sha256(f"{index}:{prompt}".encode()).digest()
    start, end = digest[0:3], digest[3:6]
    width, height = output_size(aspect_ratio)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / max(height - 1, 1)
        colour = tuple(round(a + (b - a) * mix) for a, b in zip(start, end, strict=True))
        draw.line([(0, y), (width - 1, y)], fill=(colour[0], colour[1], colour[2]))
    draw.text((4, 4), digest.hex()[:8], fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format=OUTPUT_FORMATS[output_format][0])
    return buffer.getvalue()


def weights_tar() -> bytes:
    """A ``trained_model.tar`` holding ``lora.safetensors`` (random bytes, not a real LoRA)."""
    payload = secrets.token_bytes(1024)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("lora.safetensors")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def training_images_problem(body: bytes) -> str | None:
    """Why ``body`` is not a usable ``input_images`` zip, or None when it is one."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile:
        return "input_images is not a zip file"
    if not any(n.lower().endswith(_IMAGE_SUFFIXES) for n in names):
        return "input_images contains no image files"
    return None
