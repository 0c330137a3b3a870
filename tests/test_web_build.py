"""When the browser tests' production build of web/ is stale: after a change to the app, not
after `npm run typecheck` (make lint) wrote its incremental state beside the sources. The
Makefile's rule and the tests' check agree on what a source is."""

from __future__ import annotations

import subprocess

from tests.support.web import REPO, WEB_DIR, is_source, web_sources


def test_what_the_typecheck_writes_is_no_source() -> None:
    assert not is_source("tsconfig.tsbuildinfo")
    assert not is_source("next-env.d.ts")
    assert is_source("proxy.ts") and is_source("tsconfig.json") and is_source("globals.css")


def test_the_makefile_rebuilds_for_the_same_files_the_tests_call_sources() -> None:
    printed = subprocess.run(
        ["make", "-s", "-p", "-n", "-f", "Makefile", "--no-print-directory", "lint-nothing"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    line = next(ln for ln in printed.splitlines() if ln.startswith("WEB_SOURCES :="))
    made = set(line.removeprefix("WEB_SOURCES :=").split())
    ours = {str(path.relative_to(REPO)) for path in web_sources()}
    assert made == ours
    assert WEB_DIR.joinpath("proxy.ts").relative_to(REPO).as_posix() in made
