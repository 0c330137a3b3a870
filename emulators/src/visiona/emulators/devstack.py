"""``make up``: the whole platform on this machine, in the foreground, Ctrl-C to stop.

Uses PostgreSQL and RabbitMQ at the configured URLs (default localhost) and stops with a
message naming the fix when either is unreachable. Starts SeaweedFS as the S3 server unless
``VISIONA_S3_ENDPOINT`` points at one, the Anthropic emulator and the Clerk dev issuer,
provisions schemas and roles, applies migrations, and runs the four services, the gateway and
the web app (``next start`` of the build ``make web`` made, in dev sign-in mode) under honcho.
Running it again reuses the database, the S3 data and the signing key.

State lives in ``.dev/`` (``$VISIONA_DEV_DIR``), the provider emulators' in ``.dev/providers``
(``--fresh-providers`` starts them empty). The database, roles, exchange and queues carry
the checkout's stack id (``.dev/stack-id``, made once; ``$VISIONA_STACK_ID``), so the stacks of
two checkouts share a PostgreSQL server and a broker without meeting.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from honcho.manager import Manager

from visiona.emulators.clerk import DEFAULT_AZP, repo_root
from visiona.emulators.stack import (
    WEED_PORTS,
    S3Config,
    StackConfig,
    check_postgres,
    check_rabbitmq,
    configure_bucket,
    processes,
    provision_and_migrate,
    read_env_file,
    stack_seaweedfs,
)
from visiona.kit.provision import SERVICES

DEFAULT_PORTS = {
    "gateway": 8000,
    "prompts": 50051,
    "training": 50052,
    "generation": 50053,
    "billing": 50054,
    "prompts-metrics": 9461,
    "training-metrics": 9462,
    "generation-metrics": 9463,
    "billing-metrics": 9464,
    "anthropic": 8101,
    "stripe": 8102,
    "replicate": 8103,
    "clerk": 8104,
    "s3": 8333,
    "web": 3000,
}
ENV_PORTS = {
    "gateway": "GATEWAY_PORT",
    "prompts": "PROMPTS_GRPC_PORT",
    "training": "TRAINING_GRPC_PORT",
    "generation": "GENERATION_GRPC_PORT",
    "billing": "BILLING_GRPC_PORT",
    "prompts-metrics": "PROMPTS_METRICS_PORT",
    "training-metrics": "TRAINING_METRICS_PORT",
    "generation-metrics": "GENERATION_METRICS_PORT",
    "billing-metrics": "BILLING_METRICS_PORT",
    "anthropic": "ANTHROPIC_EMULATOR_PORT",
    "stripe": "STRIPE_EMULATOR_PORT",
    "replicate": "REPLICATE_EMULATOR_PORT",
    "clerk": "CLERK_ISSUER_PORT",
    "s3": "S3_PORT",
    "web": "WEB_PORT",
}


STACK_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def _dev_value(path: Path, make: Callable[[], str]) -> str:
    """A value made on first use (mode 0600) and reused afterwards."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another process
        else:
            with os.fdopen(fd, "w") as f:
                f.write(make())
    return path.read_text().strip()


def stack_id(env: Mapping[str, str], state_dir: Path) -> str:
    """What this checkout's stack calls its database, roles, exchange and queues by:
    ``$VISIONA_STACK_ID``, else a random id made once per checkout (``.dev/stack-id``), so
    two checkouts' stacks on one PostgreSQL and one broker never share a name."""
    value = env.get("VISIONA_STACK_ID") or _dev_value(
        state_dir / "stack-id", lambda: "d" + secrets.token_hex(3)
    )
    if not STACK_ID_RE.match(value):
        raise SystemExit(
            f"VISIONA_STACK_ID {value!r}: a lower-case letter, then up to 19 lower-case "
            "letters, digits or underscores"
        )
    return value


def local_config(environ: Mapping[str, str] | None = None) -> StackConfig:
    root = repo_root()
    env = read_env_file(root / "config" / "local.env") | dict(
        os.environ if environ is None else environ
    )
    state_dir = Path(env["VISIONA_DEV_DIR"]) if env.get("VISIONA_DEV_DIR") else root / ".dev"
    ports = {name: int(env.get(var, DEFAULT_PORTS[name])) for name, var in ENV_PORTS.items()}
    # SeaweedFS's own ports sit next to the S3 port, away from the usual defaults.
    for offset, name in enumerate(WEED_PORTS, start=1):
        ports[name] = ports["s3"] + 10_000 + offset
    external_s3 = env.get("VISIONA_S3_ENDPOINT")
    s3 = S3Config(
        endpoint=external_s3 or f"127.0.0.1:{ports['s3']}",
        access_key=env.get("VISIONA_S3_ACCESS_KEY", "visiona-dev"),
        secret_key=env.get("VISIONA_S3_SECRET_KEY", "visiona-dev-secret"),
        # Another bucket: e.g. one `make restore` filled.
        bucket=env.get("VISIONA_S3_BUCKET", "visiona"),
    )
    if external_s3:
        ports.pop("s3")
    name = stack_id(env, state_dir)
    return StackConfig(
        admin_url=env.get("VISIONA_ADMIN_DATABASE_URL", env["POSTGRES_ADMIN_URL"]),
        database=env.get("VISIONA_DATABASE") or f"visiona_{name}",
        amqp_url=env.get("VISIONA_AMQP_URL", env["AMQP_URL"]),
        ports=ports,
        state_dir=state_dir,
        role_suffix=f"_{name}",
        exchange=f"visiona.events.{name}",
        queue_prefix=f"{name}.",
        s3=s3,
        web_origins=web_origins(env, ports["web"]),
        # Stable across restarts: erasure receipts are found by a keyed hash of the user id.
        pseudonym_key=env.get("VISIONA_PSEUDONYM_KEY")
        or _dev_value(state_dir / "pseudonym.key", lambda: secrets.token_urlsafe(32)),
        log_format=env.get("VISIONA_LOG_FORMAT", "console"),
        extra_env={
            # Locally an erasure starts after 30 s rather than production's 16 minutes.
            "GATEWAY_ERASURE_GRACE_S": env.get("VISIONA_ERASURE_GRACE_S", "30"),
            # Who signs in as an operator (the dev sign-in's switch, `make token ROLE=operator`,
            # `visiona login --dev NAME --role operator`) has the operator console locally.
            "GATEWAY_OPERATOR_ROLE": "operator",
            **dev_schedule(env),
        },
    )


def web_origins(env: Mapping[str, str], web_port: int) -> tuple[str, ...]:
    """The origin of the web app ``make up`` serves (``http://localhost:<WEB_PORT>``), then
    any other a developer serves it from too (``VISIONA_WEB_ORIGINS``, comma-separated, e.g.
    a ``next dev`` on another port), then the dev issuer's default party, which the tokens of
    ``make token`` and ``visiona login --dev`` name. The first is where Stripe sends the
    browser back to."""
    extra = (o.strip().rstrip("/") for o in env.get("VISIONA_WEB_ORIGINS", "").split(","))
    served = f"http://localhost:{web_port}"
    return tuple(dict.fromkeys([served, *(o for o in extra if o), DEFAULT_AZP]))


def web_process(cfg: StackConfig, root: Path) -> tuple[list[str], dict[str, str], Path] | None:
    """The web app as ``make up`` serves it (argv, environment, working folder): the
    production build (``make web``) under ``next start`` on the pinned Node, in dev sign-in
    mode against this stack's gateway and dev issuer; None when there is no build yet."""
    web = root / "web"
    next_cli = web / "node_modules" / "next" / "dist" / "bin" / "next"
    if not (web / ".next" / "BUILD_ID").is_file() or not next_cli.is_file():
        return None
    bin_dir = Path(sys.executable).parent
    node = bin_dir / "node"
    gateway_port = cfg.ports["gateway"]
    argv = [
        str(node) if node.exists() else "node",
        str(next_cli),
        "start",
        "--port",
        str(cfg.ports["web"]),
        "--hostname",
        "127.0.0.1",
    ]
    env = cfg.base_env() | {
        # The pinned Node first (scripts/link_node.py), never the machine's own.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VISIONA_AUTH_MODE": "dev",
        # The browser calls the gateway across origins (CORS, Bearer); the server directly.
        "VISIONA_API_URL": f"http://localhost:{gateway_port}",
        "VISIONA_GATEWAY_INTERNAL_URL": f"http://127.0.0.1:{gateway_port}",
        "VISIONA_WEB_URL": cfg.web_url or f"http://localhost:{cfg.ports['web']}",
        "VISIONA_DEV_ISSUER_URL": cfg.clerk_issuer,
        "NEXT_TELEMETRY_DISABLED": "1",
    }
    return argv, env, web


# Replicate at a pace a person can follow (its own environment variables change it): a
# training waits in ``starting`` (queued), then runs ``processing`` with a progress line every
# few seconds; training asks about a quiet training every few seconds (production: 30 s against
# trainings of 20-30 minutes), so the model is seen ``training``, its progress rising.
DEV_SCHEDULE = {
    "REPLICATE_EMULATOR_START_DELAY_S": "3",
    "REPLICATE_EMULATOR_TRAINING_DURATION_S": "45",
    "REPLICATE_EMULATOR_LOG_INTERVAL_S": "3",
    "REPLICATE_EMULATOR_PREDICTION_DURATION_S": "3",
}


def dev_schedule(env: Mapping[str, str]) -> dict[str, str]:
    schedule = {name: env.get(name) or value for name, value in DEV_SCHEDULE.items()}
    return schedule | {
        "TRAINING_RECONCILE_QUIET_S": env.get("VISIONA_RECONCILE_QUIET_S", "4"),
        "GENERATION_RECONCILE_QUIET_S": env.get("VISIONA_RECONCILE_QUIET_S", "4"),
        # A ready model asks Replicate about its version every minute (production: 6 h), so
        # a stack started with --fresh-providers shows its old models unavailable soon.
        "TRAINING_VERSION_CHECK_INTERVAL_S": env.get("VISIONA_VERSION_CHECK_INTERVAL_S", "60"),
    }


def up(*, fresh_providers: bool = False) -> int:
    cfg = local_config()
    cfg.fresh_providers = fresh_providers
    problems = [p for p in (check_postgres(cfg.admin_url), check_rabbitmq(cfg.amqp_url)) if p]
    if problems:
        print("make up cannot start:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    print(
        f"provisioning database {cfg.database!r} (roles *{cfg.role_suffix}; exchange "
        f"{cfg.exchange!r}, queues {cfg.queue_prefix}*) and applying migrations …",
        flush=True,
    )
    provision_and_migrate(cfg)
    # SeaweedFS runs outside honcho, which kills whatever has not stopped 5 s after Ctrl-C:
    # SeaweedFS needs about 15 s to stop cleanly.
    seaweedfs = stack_seaweedfs(cfg) if "s3" in cfg.ports else None
    manager = Manager()
    for name, (argv, env) in processes(cfg).items():
        if name == "s3":
            continue
        # exec: signals reach the process itself, not an intermediate shell.
        manager.add_process(name, "exec " + shlex.join(argv), env=env)
    web = web_process(cfg, repo_root())
    if web is not None:
        argv, env, folder = web
        manager.add_process("web", "exec " + shlex.join(argv), env=env, cwd=str(folder))
    try:
        if seaweedfs is not None:
            print(f"starting S3 (SeaweedFS, log {seaweedfs.log_path}) …", flush=True)
            seaweedfs.start()
            # Browsers upload photos to it and fetch images from it: the web app's pages only.
            configure_bucket(seaweedfs.s3, cfg.web_origins)
        opening = (
            f"Open {cfg.web_url} in your browser   (the web app; sign in with any name)\n"
            if web is not None
            else "The web app is not built: `make up` builds it (`make web`)\n"
        )
        print(
            f"\n{opening}\n"
            "Visiona is starting:\n"
            f"  API        {cfg.gateway_url}/v1   (docs {cfg.gateway_url}/docs)\n"
            f"  readiness  {cfg.gateway_url}/readyz\n"
            f"  S3         http://{cfg.s3.endpoint if cfg.s3 else '-'}\n"
            f"  token      make -s token USER=alice\n"
            f'  try        curl -H "Authorization: Bearer $(make -s token USER=alice)" '
            f"-H 'Content-Type: application/json' -X POST {cfg.gateway_url}/v1/prompts/enhance "
            f'-d \'{{"prompt":"me on a beach"}}\'\n'
            f"  CLI        source {_venv_activate()}   (puts visiona on PATH), then: "
            "visiona login --dev alice\n"
            "  photos     make -s photos   (ten sample photos of one person, for a training)\n"
            "  stop       Ctrl-C\n",
            flush=True,
        )
        manager.loop()
    finally:
        if seaweedfs is not None and seaweedfs.process is not None:
            # honcho's handler would swallow a second Ctrl-C; here it kills SeaweedFS at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("stopping S3 (SeaweedFS) cleanly, about 15 s; Ctrl-C to kill it …", flush=True)
            print(f"S3 (SeaweedFS) stopped (exit status {seaweedfs.stop()})", flush=True)
    return int(manager.returncode or 0)


def _venv_activate() -> str:
    """The activation script of this environment, relative to the working folder if inside."""
    script = Path(sys.executable).parent / "activate"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def service_env(service: str) -> str:
    """``export`` lines of a service's settings on this checkout's stack (its database,
    queues and exchange), for running its commands by hand (e.g. ``dead-letters list``)."""
    cfg = local_config()
    if service == "backup":
        env = cfg.backup_env()
    else:
        env = cfg.gateway_env() if service == "gateway" else cfg.service_env(service)
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="visiona-dev")
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="run the whole platform locally (make up)")
    up_cmd.add_argument(
        "--fresh-providers",
        action="store_true",
        help="start the Stripe, Replicate and Clerk emulators empty, forgetting what they "
        "kept in .dev/providers (models trained before become unavailable)",
    )
    sub.add_parser("provision", help="create the database, schemas and roles (admin URL)")
    env_cmd = sub.add_parser(
        "env",
        help="print a service's settings (or visiona-ops's: backup) on this checkout's stack "
        "as export lines",
    )
    env_cmd.add_argument("service", choices=(*SERVICES, "backup"))
    args = parser.parse_args(argv)
    if args.command == "provision":
        from visiona.kit.provision import main as provision_main

        provision_main([])
        return
    if args.command == "env":
        print(service_env(args.service))
        return
    raise SystemExit(up(fresh_providers=args.fresh_providers))


if __name__ == "__main__":
    main()
