"""Sample photos for the demo, the README's walk-through and the tests: one person, ten
distinct photos. ``python -m visiona.cli.samples [DIR]`` (``make -s photos``) writes them to
DIR (default ``$VISIONA_DEV_DIR/sample-photos``, else ``.dev/sample-photos``) and prints DIR.

The face is NASA's public-domain portrait of astronaut Eileen Collins (scikit-image's
``data.astronaut()``), placed at different sizes, sides and positions on different
backgrounds, so each photo is distinct (no perceptual duplicate) and shows exactly one face.
"""

from __future__ import annotations

import io
import os
import random
import sys
from functools import cache
from pathlib import Path

from PIL import Image, ImageOps

# Indices of face_photo that the validator accepts as one sharp face each (tested).
FACE_INDICES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13)


@cache
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())  # type: ignore[no-untyped-call]


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


@cache
def face_photo(i: int) -> bytes:
    """The ``i``-th distinct single-face photo (i >= 1), a 900x900 JPEG."""
    rnd = random.Random(i)
    size = 900
    bg = Image.new("RGB", (size, size))
    colours = [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(4)]
    for band, colour in enumerate(colours):
        box = (
            (0, band * size // 4, size, (band + 1) * size // 4)
            if i % 2
            else (band * size // 4, 0, (band + 1) * size // 4, size)
        )
        bg.paste(colour, box)
    face = ImageOps.mirror(astronaut()) if i % 3 == 1 else astronaut()
    scale = 1.0 + 0.1 * (i % 4)
    face = face.resize((int(512 * scale), int(512 * scale)))
    x = rnd.randrange(0, max(1, size - face.width))
    y = rnd.randrange(0, max(1, size - face.height))
    bg.paste(face, (x, y))
    return encode(bg, quality=90)


def write_photos(directory: Path, count: int = 10) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, i in enumerate(FACE_INDICES[:count], 1):
        path = directory / f"me-{n:02d}.jpg"
        path.write_bytes(face_photo(i))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    folder = (
        Path(args[0])
        if args
        else Path(os.environ.get("VISIONA_DEV_DIR") or ".dev") / "sample-photos"
    )
    write_photos(folder)
    print(folder.resolve())


if __name__ == "__main__":
    main()
