"""Check that every service has the shape docs/architecture.md says it has (``make lint``).

The document's role table has a row per role and a column per service; a cell names the
module (``domain.py``) or package (``domain/``) that plays the role in that service, or ``—``
where the service has no such role. The check fails when

- a cell names a module or package the service does not have,
- a row names the role by different names in different services (``jobs.py`` here,
  ``sweeps.py`` there),
- a service has a top-level module or package no row names (a new role, or a stray file),
- a service has no README.md;

and ADRs: every ``docs/adr/NNNN-*.md`` follows docs/adr/TEMPLATE.md (a title, a status line,
then exactly the sections Context, Decision and Consequences, in that order).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
ADR_DIR = ROOT / "docs" / "adr"
NONE = {"—", "-", ""}
# Not roles: the package marker, the type-hint marker, the schema's Alembic migrations.
NOT_ROLES = {"__init__.py", "py.typed", "migrations", "__pycache__"}
ADR_SECTIONS = ["Context", "Decision", "Consequences"]


def role_table(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The first Markdown table whose header starts with ``role``: services, then rows."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and cells[0].lower() == "role":
            services, rows = cells[1:], []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                cells = [c.strip().strip("`") for c in row.strip("|").split("|")]
                rows.append((cells[0], cells[1:]))
            return services, rows
    raise SystemExit(f"{DOC.relative_to(ROOT)}: no table with a `role` header")


def _entries(package: Path) -> set[str]:
    return {
        p.name + ("/" if p.is_dir() else "")
        for p in package.iterdir()
        if p.name not in NOT_ROLES and (p.is_dir() or p.suffix == ".py")
    }


def check_services(problems: list[str]) -> int:
    services, rows = role_table(DOC.read_text())
    for role, cells in rows:
        if len(cells) != len(services):
            problems.append(f"role {role!r}: {len(cells)} cells for {len(services)} services")
        stems = {cell.removesuffix(".py").removesuffix("/") for cell in cells if cell not in NONE}
        if len(stems) > 1:
            problems.append(f"role {role!r} has several names: {', '.join(sorted(stems))}")
    for column, service in enumerate(services):
        package = ROOT / "services" / service / "src" / "visiona" / service
        if not package.is_dir():
            problems.append(f"{service}: no package at {package.relative_to(ROOT)}")
            continue
        if not (ROOT / "services" / service / "README.md").is_file():
            problems.append(f"{service}: no README.md")
        named = set()
        for role, cells in rows:
            cell = cells[column] if column < len(cells) else ""
            if cell in NONE:
                continue
            named.add(cell)
            if cell not in _entries(package):
                problems.append(f"{service}: {role} is {cell}, which does not exist")
        for stray in sorted(_entries(package) - named):
            problems.append(f"{service}: {stray} plays no role of {DOC.relative_to(ROOT)}")
    return len(services)


def check_adrs(problems: list[str]) -> int:
    adrs = sorted(ADR_DIR.glob("[0-9][0-9][0-9][0-9]-*.md"))
    for path in adrs:
        text = path.read_text()
        number = int(path.name[:4])
        if not re.match(rf"# {number}\. \S", text):
            problems.append(f"{path.name}: the title is not `# {number}. …`")
        if not re.search(r"(?m)^Status: (proposed|accepted|superseded by \d+)", text):
            problems.append(f"{path.name}: no `Status:` line")
        sections = re.findall(r"(?m)^## (.+?)\s*$", text)
        if sections != ADR_SECTIONS:
            problems.append(f"{path.name}: sections {sections}, the template has {ADR_SECTIONS}")
    return len(adrs)


def main() -> int:
    problems: list[str] = []
    services = check_services(problems)
    adrs = check_adrs(problems)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    print(f"layout: {services} services match {DOC.relative_to(ROOT)}; {adrs} ADRs on the template")
    return 0


if __name__ == "__main__":
    sys.exit(main())
