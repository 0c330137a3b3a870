"""`make up`: a message naming the fix when PostgreSQL or RabbitMQ is unreachable, and
SeaweedFS stopped cleanly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from visiona.emulators import replicate
from visiona.emulators.devstack import local_config, web_process
from visiona.emulators.stack import (
    SeaweedFS,
    check_postgres,
    check_rabbitmq,
    free_port,
    processes,
    weed_command,
)
from visiona.training.config import TrainingSettings


def test_unreachable_postgres_is_named_with_the_fix() -> None:
    message = check_postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    assert message is not None
    assert "PostgreSQL is not reachable" in message
    assert "pg_ctlcluster" in message
    assert "VISIONA_ADMIN_DATABASE_URL" in message


def test_unreachable_rabbitmq_is_named_with_the_fix() -> None:
    message = check_rabbitmq(f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    assert message is not None
    assert "rabbitmq-server -detached" in message
    assert "VISIONA_AMQP_URL" in message


def test_reachable_services_pass(stack_urls: tuple[str, str]) -> None:
    admin_url, amqp_url = stack_urls
    assert check_postgres(admin_url) is None
    assert check_rabbitmq(amqp_url) is None


def test_seaweedfs_stops_cleanly_and_leaves_nothing_in_the_temporary_folder(
    new_seaweedfs: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    ports = new_seaweedfs.ports.values()

    def sockets() -> list[Path]:
        return [s for port in ports for s in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]

    new_seaweedfs.start()
    process = new_seaweedfs.process
    assert process is not None
    assert sockets(), "weed listens on Unix sockets in /tmp as well"

    new_seaweedfs.stop()

    assert process.returncode == 0, f"SeaweedFS was not stopped cleanly ({process.returncode})"
    assert sockets() == []
    assert sorted(p.name for p in temp.iterdir()) == []


def test_a_dev_stack_training_is_asked_about_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locally a training is seen ``training`` with its progress rising: it runs long enough
    for the training service to ask about it several times (it listens only to the start and
    completed webhooks), and prints progress more often than it is asked."""
    cfg = local_config({"VISIONA_DEV_DIR": str(tmp_path / ".dev")})
    specs = processes(cfg)
    for name, value in specs["replicate"][1].items():
        monkeypatch.setenv(name, value)
    emulator = replicate.Settings.from_env()
    training = TrainingSettings.model_validate(
        {
            k.removeprefix("TRAINING_").lower(): v
            for k, v in specs["training"][1].items()
            if k.startswith("TRAINING_")
        }
    )

    assert emulator.start_delay_s > 0, "a training waits in starting (queued) first"
    assert emulator.training_duration_s >= 5 * training.reconcile_quiet_s
    assert emulator.log_interval_s <= training.reconcile_quiet_s


def test_make_up_names_the_line_that_puts_visiona_on_path() -> None:
    """``make up`` prints ``source <venv>/bin/activate``: the folder holding ``visiona``."""
    from visiona.emulators.devstack import _venv_activate

    activate = Path(_venv_activate())
    assert activate.name == "activate" and activate.is_file()
    assert (activate.parent / "visiona").is_file()


def test_make_up_serves_the_web_app_on_its_port_in_dev_mode(tmp_path: Path) -> None:
    """``next start`` of the build on the pinned Node, against this stack's gateway and dev
    issuer; its origin is the first of the stack's web origins (CORS, authorized parties,
    Stripe's way back), and the dev issuer's default party stays one (``make token``)."""
    cfg = local_config(
        {
            "VISIONA_DEV_DIR": str(tmp_path / ".dev"),
            "WEB_PORT": "3456",
            "GATEWAY_PORT": "8456",
            "VISIONA_WEB_ORIGINS": "http://localhost:3457, http://localhost:3456/",
        }
    )
    assert cfg.web_origins == (
        "http://localhost:3456",
        "http://localhost:3457",
        "http://localhost:3000",
    )
    assert cfg.web_url == "http://localhost:3456"
    gateway = cfg.gateway_env()
    assert gateway["GATEWAY_CORS_ORIGINS"].split(",") == list(cfg.web_origins)
    assert gateway["GATEWAY_CLERK_AUTHORIZED_PARTIES"].split(",") == list(cfg.web_origins)
    assert cfg.service_env("billing")["BILLING_PORTAL_RETURN_URL"] == (
        "http://localhost:3456/billing"
    )
    # SeaweedFS lets the same pages in (its server-wide CORS; the bucket's rules are set
    # once it runs).
    assert f"-s3.allowedOrigins={','.join(cfg.web_origins)}" in weed_command(cfg)

    root = tmp_path / "checkout"
    assert web_process(cfg, root) is None, "no build: nothing to serve"
    (root / "web" / ".next").mkdir(parents=True)
    (root / "web" / ".next" / "BUILD_ID").write_text("b1")
    cli = root / "web" / "node_modules" / "next" / "dist" / "bin" / "next"
    cli.parent.mkdir(parents=True)
    cli.write_text("")
    web = web_process(cfg, root)
    assert web is not None
    argv, env, folder = web
    assert folder == root / "web"
    assert argv[1:] == [str(cli), "start", "--port", "3456", "--hostname", "127.0.0.1"]
    assert Path(argv[0]).name == "node"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    # The developer's other settings pass through; these are the web app's own.
    own = {
        "VISIONA_AUTH_MODE": "dev",
        "VISIONA_API_URL": "http://localhost:8456",
        "VISIONA_GATEWAY_INTERNAL_URL": "http://127.0.0.1:8456",
        "VISIONA_WEB_URL": "http://localhost:3456",
        "VISIONA_DEV_ISSUER_URL": cfg.clerk_issuer,
        "NEXT_TELEMETRY_DISABLED": "1",
    }
    assert {name: env.get(name) for name in own} == own


def test_the_default_web_app_is_on_port_3000(tmp_path: Path) -> None:
    cfg = local_config({"VISIONA_DEV_DIR": str(tmp_path / ".dev")})
    assert cfg.web_url == "http://localhost:3000"
    assert cfg.web_origins == ("http://localhost:3000",)
