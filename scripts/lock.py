"""``make lock``: the requirements locks from one ``uv lock``, keeping every version
requirements.lock pins; ``--check`` (``make lint``): the committed locks are exactly that.

uv.lock records download addresses, so it is never committed, and ``uv lock`` without one
resolves from scratch: every re-lock would move pins nobody asked to move. So the resolution
runs in a temporary copy of the workspace's pyproject files, with requirements.lock's pins as
constraints (``[tool.uv] constraint-dependencies``, which uv reads from the workspace root
only). A dependency added to a pyproject.toml is resolved afresh; one no longer needed drops
out. ``UPGRADE="httpx anthropic"`` lets those packages move (to the newest versions the
projects' own requirements allow); ``UPGRADE=all`` re-resolves everything.

Exported from that one resolution, hashes and no download addresses:

- requirements.lock: the workspace with every group (development and CI);
- requirements.runtime.lock: what the five services import, no group (their image);
- requirements.build.lock: the ``build`` group alone (the images' builder);
- requirements.ops.lock: what visiona-ops runs on (the backup CronJob's image).

``--check`` fails when a committed lock is not what the resolution exports: a lock edited by
hand, or a pyproject.toml changed without ``make lock`` (a package the services import but
their image's lock lacks, say).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from strip_lock_urls import pins

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("gateway", "training", "generation", "billing", "prompts")
TABLE = "[tool.uv]\n"
ALL = "all"
EXPORT = ("export", "--format", "requirements-txt", "--no-emit-workspace", "--frozen")
LOCKS: dict[str, tuple[str, ...]] = {
    "requirements.lock": ("--all-groups",),
    "requirements.runtime.lock": (
        "--no-dev",
        *(arg for s in SERVICES for arg in ("--package", f"visiona-{s}")),
    ),
    "requirements.build.lock": ("--only-group", "build"),
    "requirements.ops.lock": ("--no-dev", "--package", "visiona-ops"),
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints(lock_text: str, upgrade: set[str]) -> list[str]:
    """requirements.lock's pins as constraints, but for the packages named in ``upgrade``."""
    if ALL in upgrade:
        return []
    moving = {normalized(name) for name in upgrade}
    kept = [pin for pin in pins(lock_text) if normalized(pin.split("==")[0]) not in moving]
    return sorted(kept, key=str.lower)


def with_constraints(pyproject: str, kept: list[str]) -> str:
    if TABLE not in pyproject:
        raise SystemExit(f"the root pyproject.toml has no {TABLE.strip()} table")
    listed = "".join(f'    "{pin}",\n' for pin in kept)
    return pyproject.replace(TABLE, f"{TABLE}constraint-dependencies = [\n{listed}]\n", 1)


def workspace_copy(into: Path, kept: list[str]) -> None:
    """Every pyproject.toml of the workspace (all uv needs to resolve it), the root's with
    the constraints."""
    for source in ROOT.glob("**/pyproject.toml"):
        relative = source.relative_to(ROOT)
        if any(part.startswith(".") or part == "node_modules" for part in relative.parts):
            continue
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    root = into / "pyproject.toml"
    root.write_text(with_constraints(root.read_text(), kept))


def resolve(uv: list[str], upgrade: set[str]) -> dict[str, str]:
    """Each lock's text as the resolution exports it."""
    kept = constraints((ROOT / "requirements.lock").read_text(), upgrade)
    with tempfile.TemporaryDirectory(prefix="visiona-lock-") as tmp:
        workspace = Path(tmp)
        workspace_copy(workspace, kept)
        locked = subprocess.run([*uv, "lock", "--quiet"], cwd=workspace, check=False)
        if locked.returncode:
            raise SystemExit(
                "uv lock failed with requirements.lock's pins as constraints: a package whose "
                "new requirement excludes its pinned version must be named in UPGRADE"
            )
        return {
            name: subprocess.run(
                [*uv, *EXPORT, "--no-header", *args],
                cwd=workspace,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for name, args in LOCKS.items()
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default="uv", help="the uv command (may be several words)")
    parser.add_argument("--upgrade", default="", help="packages that may move, or 'all'")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    exported = resolve(args.uv.split(), set(args.upgrade.split()))
    stale = []
    for name, text in exported.items():
        path = ROOT / name
        current = path.read_text() if path.is_file() else ""
        if args.check:
            if current != text:
                stale.append(name)
                sys.stdout.writelines(
                    list(
                        difflib.unified_diff(
                            current.splitlines(True), text.splitlines(True), name, "make lock", n=1
                        )
                    )[:40]
                )
        else:
            path.write_text(text)
    if stale:
        print(f"not what `make lock` makes: {', '.join(stale)}: run make lock", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
