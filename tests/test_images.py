"""scripts/images.py's own logic on made-up files: which Debian mirror it reads from apt's
sources and which sources it gives the bases, what it finds in an image's filesystem that a
runtime image must not hold, how it reads the ops image's backup, and the lock check that keeps
the images' locks on requirements.lock's pins."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import images_base  # noqa: E402
import images_check  # noqa: E402
import strip_lock_urls  # noqa: E402

MIRROR = "http://mirror.invalid/debian"
SECURITY = "http://mirror.invalid/debian-security"


def test_the_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(
        f"Types: deb\nURIs: {SECURITY}\nSuites: bookworm-security\nComponents: main\n\n"
        f"Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n"
        f"Types: deb\n# a comment\nURIs: {MIRROR}\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert images_base.debian_mirror((folder, tmp_path / "sources.list")) == MIRROR


def test_the_mirror_is_read_from_a_one_line_list(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(
        f"deb {SECURITY} bookworm-security main\n"
        f"deb [signed-by=/usr/share/keyrings/k.gpg] {MIRROR} bookworm main\n"
    )
    assert images_base.debian_mirror((tmp_path / "none.d", listing)) == MIRROR


def test_no_mirror_for_the_suite_is_an_error(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(f"deb {MIRROR} trixie main\n")
    with pytest.raises(SystemExit, match="no apt source for Debian bookworm"):
        images_base.debian_mirror((listing,))


DEBIAN_SOURCES = f"""\
Types: deb
URIs: {MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_the_bases_read_the_suite_its_updates_and_security_from_the_machines_archives(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(
        f"Types: deb deb-src\nURIs: {MIRROR}\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /etc/apt/keyrings/local.gpg\n\n"
        f"Types: deb\nURIs: {SECURITY}\nSuites: bookworm-security\nComponents: main\n"
    )
    (folder / "vendor.list").write_text("deb http://vendor.invalid/apt stable main\n")
    assert images_base.base_apt_sources((folder, tmp_path / "sources.list")) == DEBIAN_SOURCES


def test_one_line_sources_give_the_bases_the_same_stanzas(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(
        f"deb {SECURITY} bookworm-security main\n"
        f"deb [arch=amd64] {MIRROR} bookworm main\n"
        f"deb {MIRROR} bookworm-updates main\n"
        "deb http://other.invalid/debian bookworm main\n"
        f"deb {MIRROR} trixie main\n"
    )
    assert images_base.base_apt_sources((tmp_path / "none.d", listing)) == DEBIAN_SOURCES


def test_a_machine_without_the_release_gives_no_base_sources(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(f"deb {SECURITY} bookworm-security main\n")
    with pytest.raises(SystemExit, match="no apt source for Debian bookworm"):
        images_base.base_apt_sources((listing,))


def _touch(root: Path, *paths: str) -> None:
    for rel in paths:
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")


SITE = "opt/venv/lib/python3.11/site-packages"
CLEAN = (
    "usr/bin/python3.11",
    "usr/bin/env",
    f"{SITE}/numpy/core/multiarray.py",
    f"{SITE}/visiona/gateway/app.py",
    f"{SITE}/pip_audit_notes.txt",
    "opt/venv/bin/visiona-gateway",
    "usr/share/doc/make-is-not-a-program-here/",
    "app/server.js",
)


def test_a_clean_filesystem_holds_nothing_forbidden(tmp_path: Path) -> None:
    _touch(tmp_path, *CLEAN)
    assert images_check.forbidden_in(tmp_path) == []


def test_compilers_installers_test_tools_tests_and_emulators_are_found(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        *CLEAN,
        "usr/bin/gcc",
        "usr/bin/make",
        "usr/local/bin/npm",
        "opt/venv/bin/pip",
        "opt/venv/bin/pytest",
        f"{SITE}/pip/__init__.py",
        f"{SITE}/setuptools/__init__.py",
        f"{SITE}/numpy/_core/tests/test_a.py",
        f"{SITE}/visiona/emulators/stripe.py",
        "app/.git/HEAD",
    )
    assert images_check.forbidden_in(tmp_path) == sorted(
        [
            "/app/.git/",
            f"/{SITE}/numpy/_core/tests/",
            f"/{SITE}/pip/",
            f"/{SITE}/setuptools/",
            f"/{SITE}/visiona/emulators",
            "/opt/venv/bin/pip",
            "/opt/venv/bin/pytest",
            "/usr/bin/gcc",
            "/usr/bin/make",
            "/usr/local/bin/npm",
        ]
    )


POSTGRES_CLIENT = (
    "usr/bin/pg_dump",
    "usr/bin/pg_restore",
    "usr/lib/postgresql/15/bin/pg_dump",
    "usr/lib/postgresql/15/bin/psql",
)


def test_a_service_image_may_not_hold_the_postgresql_client(tmp_path: Path) -> None:
    _touch(tmp_path, *CLEAN, *POSTGRES_CLIENT)
    found = images_check.forbidden_in(tmp_path, images_check.forbidden_programs("training"))
    assert found == sorted(f"/{rel}" for rel in POSTGRES_CLIENT)
    assert images_check.forbidden_in(tmp_path) == found


def test_the_ops_image_may_hold_the_postgresql_client_and_nothing_else_forbidden(
    tmp_path: Path,
) -> None:
    _touch(tmp_path, *CLEAN, *POSTGRES_CLIENT, "opt/venv/bin/pip", "usr/bin/gcc")
    assert images_check.forbidden_in(tmp_path, images_check.forbidden_programs("ops")) == [
        "/opt/venv/bin/pip",
        "/usr/bin/gcc",
    ]


BACKUP_OUTPUT = (
    "backup 20261207T133000Z: database visiona_images_ab12 (48210 bytes, sha256 0f1e2d3c4b5a…), "
    "1 objects (35 bytes)\n"
    "lifecycle rule: set on the bucket; pruned 0 backups and 0 journal entries past the window\n"
)


def test_a_backup_that_list_names_is_the_ops_images_answer() -> None:
    listed = "20261206T031700Z\n20261207T133000Z\n"
    assert (
        images_check.backup_answer(BACKUP_OUTPUT, listed, objects=1)
        == "backup 20261207T133000Z listed (1 object)"
    )


def test_a_backup_that_list_does_not_name_fails() -> None:
    with pytest.raises(RuntimeError, match="does not name backup 20261207T133000Z"):
        images_check.backup_answer(BACKUP_OUTPUT, "20261206T031700Z\n", objects=1)


def test_a_backup_without_the_buckets_objects_or_a_dump_fails() -> None:
    with pytest.raises(RuntimeError, match="copied 1 objects of the bucket's 2"):
        images_check.backup_answer(BACKUP_OUTPUT, "20261207T133000Z\n", objects=2)
    empty = BACKUP_OUTPUT.replace("48210 bytes", "0 bytes")
    with pytest.raises(RuntimeError, match="empty dump"):
        images_check.backup_answer(empty, "20261207T133000Z\n", objects=1)
    with pytest.raises(RuntimeError, match="reported no backup"):
        images_check.backup_answer("Error: connection refused\n", "", objects=1)


LOCK = """\
alpha==1.0 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via beta
beta==2.0 ; sys_platform != 'win32' \\
    --hash=sha256:cccc
"""


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    full, runtime, build = (tmp_path / n for n in ("full.lock", "runtime.lock", "build.lock"))
    full.write_text(LOCK)
    build.write_text("alpha==1.0 \\\n    --hash=sha256:bbbb \\\n    --hash=sha256:aaaa\n")
    monkeypatch.setattr(strip_lock_urls, "ROOT", tmp_path)
    monkeypatch.setattr(strip_lock_urls, "PYTHON_LOCK", full)
    monkeypatch.setattr(strip_lock_urls, "IMAGE_LOCKS", (runtime, build))
    return full, runtime, build


def test_image_locks_that_pin_as_the_full_lock_pass(locks: tuple[Path, Path, Path]) -> None:
    _, runtime, _ = locks
    runtime.write_text("beta==2.0 ; sys_platform != 'win32' \\\n    --hash=sha256:cccc\n")
    assert strip_lock_urls.check_python_locks() == []


def test_an_image_lock_off_the_full_locks_pins_fails(locks: tuple[Path, Path, Path]) -> None:
    _, runtime, _ = locks
    runtime.write_text(
        "beta==2.1 \\\n    --hash=sha256:cccc\nalpha==1.0 \\\n    --hash=sha256:aaaa\n"
    )
    assert strip_lock_urls.check_python_locks() == [
        "runtime.lock: beta==2.1 is not pinned so in requirements.lock: run make lock",
        "runtime.lock: alpha==1.0 is not pinned so in requirements.lock: run make lock",
    ]


def test_a_lock_naming_an_address_or_missing_fails(locks: tuple[Path, Path, Path]) -> None:
    full, runtime, build = locks
    full.write_text(LOCK + "--index-url https://index.invalid/simple\n")
    build.unlink()
    runtime.write_text("")
    assert strip_lock_urls.check_python_locks() == [
        "full.lock names a download address: run make lock",
        "build.lock is missing: run make lock",
    ]


def test_the_kernel_filesystems_a_mounted_rootfs_binds_in_are_not_walked(tmp_path: Path) -> None:
    # What the host's /proc, /sys and /dev hold is not the image's (a process's bin, say).
    _touch(tmp_path, *CLEAN, "proc/1/root/usr/bin/gcc", "sys/bin/pip", "dev/tests/x")
    assert images_check.forbidden_in(tmp_path) == []
    _touch(tmp_path, "usr/proc/bin/pip")
    assert images_check.forbidden_in(tmp_path) == ["/usr/proc/bin/pip"]
