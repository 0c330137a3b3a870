"""Keep web addresses out of the committed npm locks.

npm is set (``.npmrc``: ``omit-lockfile-registry-resolved``) to record no download address in
package-lock.json, but it still copies each package's ``funding`` links into the lock. They
serve nothing at install time (``npm ci`` ignores them), so they are dropped: a lock then names
no web address at all, which ``--check`` (``make lint``) holds. Run it after ``npm install``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "package-lock.json", ROOT / "web" / "package-lock.json")
URL = re.compile(r"https?://")


def stripped(text: str) -> str:
    lock = json.loads(text)
    for package in lock.get("packages", {}).values():
        package.pop("funding", None)
        package.pop("resolved", None)
    return json.dumps(lock, indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    status = 0
    for path in LOCKS:
        text = path.read_text()
        if args.check:
            if URL.search(text):
                print(
                    f"{path.relative_to(ROOT)} names a web address: run python {Path(__file__).relative_to(ROOT)}"
                )
                status = 1
        else:
            path.write_text(stripped(text))
    return status


if __name__ == "__main__":
    sys.exit(main())
