"""Generate Python gRPC stubs from proto/ into libs/contracts/src (``make proto``).

With ``--check`` it generates into a scratch folder and fails when the committed stubs differ,
so CI catches stubs that are stale against their .proto files.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "libs" / "contracts" / "src"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out: Path) -> list[Path]:
    files = sorted(PROTO.rglob("*.proto"))
    include = str(resources.files("grpc_tools") / "_proto")
    for proto in files:
        rel = proto.relative_to(PROTO)
        args = [
            "protoc",
            f"-I{PROTO}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(rel),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {rel}")
    return [out / p.relative_to(PROTO).with_suffix("") for p in files]


def generated(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.name.endswith(SUFFIXES)}


def main() -> int:
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            fresh, committed = generated(Path(tmp)), generated(OUT)
            stale = sorted(
                str(p)
                for p in fresh | committed
                if p not in fresh
                or p not in committed
                or not filecmp.cmp(Path(tmp) / p, OUT / p, shallow=False)
            )
        if stale:
            print("generated stubs are stale; run `make proto`:", *stale, sep="\n  ")
            return 1
        return 0
    for old in generated(OUT):
        (OUT / old).unlink()
    generate(OUT)
    for d in sorted(OUT.rglob("*"), reverse=True):
        if d.is_dir() and d.name == "__pycache__":
            shutil.rmtree(d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
