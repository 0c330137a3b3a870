"""The web app's typed API client comes from the gateway's OpenAPI: write it, or check it.

``python scripts/gen_web_api.py`` writes ``web/lib/api/openapi.json`` (the gateway's schema)
and ``web/lib/api/schema.d.ts`` (its TypeScript types, by openapi-typescript);
``--check`` (``make lint``) fails when either differs from what the gateway now describes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_DIR = ROOT / "web" / "lib" / "api"


def openapi_json() -> str:
    from visiona.gateway.app import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


def typescript(spec: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "openapi.json"
        target = Path(tmp) / "schema.d.ts"
        source.write_text(spec)
        subprocess.run(
            ["npx", "--no-install", "openapi-typescript", str(source), "-o", str(target)],
            cwd=ROOT / "web",
            check=True,
            capture_output=True,
        )
        return target.read_text()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    spec = openapi_json()
    wanted = {API_DIR / "openapi.json": spec, API_DIR / "schema.d.ts": typescript(spec)}
    stale = [
        path for path, text in wanted.items() if not path.is_file() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run `python scripts/gen_web_api.py`")
        return 1 if stale else 0
    API_DIR.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(wanted[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
