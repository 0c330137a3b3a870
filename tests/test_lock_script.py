"""scripts/lock.py's own logic: requirements.lock's pins become the resolution's constraints,
but for the packages the developer lets move; the root pyproject gets them in its [tool.uv]."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import lock  # noqa: E402

LOCK = """\
httpx==0.28.1 \\
    --hash=sha256:aaa
    # via visiona-kit
Pillow==11.0.0 ; sys_platform != 'emscripten' \\
    --hash=sha256:bbb
typing-extensions==4.15.0 \\
    --hash=sha256:ccc
"""


def test_every_pin_is_kept_but_those_named_to_move() -> None:
    assert lock.constraints(LOCK, set()) == [
        "httpx==0.28.1",
        "Pillow==11.0.0",
        "typing-extensions==4.15.0",
    ]
    # Names as pip spells them: case, '-', '_' and '.' do not matter.
    assert lock.constraints(LOCK, {"pillow", "typing_extensions"}) == ["httpx==0.28.1"]
    assert lock.constraints(LOCK, {"all"}) == []


def test_the_constraints_go_into_the_root_table_and_nothing_else_changes() -> None:
    original = (ROOT / "pyproject.toml").read_text()
    written = tomllib.loads(lock.with_constraints(original, ["httpx==0.28.1"]))
    assert written["tool"]["uv"]["constraint-dependencies"] == ["httpx==0.28.1"]
    del written["tool"]["uv"]["constraint-dependencies"]
    assert written == tomllib.loads(original)
    with pytest.raises(SystemExit):
        lock.with_constraints("[project]\nname = 'x'\n", [])
