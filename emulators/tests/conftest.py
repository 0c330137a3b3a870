"""Fixtures the emulator tests share."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def images_zip() -> bytes:
    """A training set as the Replicate trainer takes it: a zip holding one small PNG."""
    image = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(image, format="PNG")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/one.png", image.getvalue())
    return buffer.getvalue()
