"""Keep web addresses out of the committed npm locks.

npm is set (``.npmrc``: ``omit-lockfile-registry-resolved``) to record no download address in
package-lock.json, but it still copies each package's ``funding`` links into the lock. They
serve nothing at install time (``npm ci`` ignores them), so they are dropped: a lock then names
no web address at all, which ``--check`` (``make lint``) holds. Run it after ``npm install``.

``--check`` also reads the Python locks ``make lock`` exports: none may name a web address
either, and the image locks (the services' runtime and build locks, the ops image's) must
pin exactly what requirements.lock pins, hash for hash, so the images run the versions CI
tested.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "package-lock.json", ROOT / "web" / "package-lock.json")
PYTHON_LOCK = ROOT / "requirements.lock"
IMAGE_LOCKS = tuple(
    ROOT / name
    for name in ("requirements.runtime.lock", "requirements.build.lock", "requirements.ops.lock")
)
URL = re.compile(r"https?://|file:")
# One requirement of an exported lock: its pin, markers and hashes (comments dropped).
REQUIREMENT = re.compile(r"(?m)^([A-Za-z0-9][^\s;]*==\S+)((?:[^\n]*\\\n)*[^\n]*)$")


def pins(text: str) -> dict[str, str]:
    """Each requirement of a requirements-txt lock and its hashes, keyed by ``name==version``."""
    return {
        match.group(1): " ".join(sorted(re.findall(r"--hash=(\S+)", match.group(2))))
        for match in REQUIREMENT.finditer(text)
    }


def check_python_locks() -> list[str]:
    problems = []
    full = pins(PYTHON_LOCK.read_text())
    for path in (PYTHON_LOCK, *IMAGE_LOCKS):
        rel = path.relative_to(ROOT)
        if not path.is_file():
            problems.append(f"{rel} is missing: run make lock")
            continue
        text = path.read_text()
        if URL.search(text):
            problems.append(f"{rel} names a download address: run make lock")
        if path == PYTHON_LOCK:
            continue
        for pin, hashes in pins(text).items():
            if full.get(pin) != hashes:
                problems.append(
                    f"{rel}: {pin} is not pinned so in requirements.lock: run make lock"
                )
    return problems


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
    if args.check:
        for problem in check_python_locks():
            print(problem)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
