"""The local platform as processes: SeaweedFS, emulators, four services and the gateway.

``make up`` (devstack) and the end-to-end test fixtures both build their processes here, so
the tests run the platform exactly as a developer does, only on other ports, another
database, other roles and another exchange.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from visiona.emulators.ports import free_port
from visiona.kit.provision import BACK_SERVICES, SERVICES, ServiceRoles, provision


def role_url(admin_url: str, role: str, database: str) -> str:
    """SQLAlchemy URL for ``role`` on the admin URL's server (local trust auth: no password)."""
    params = conninfo_to_dict(admin_url)
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    return f"postgresql+psycopg://{role}@{host}:{port}/{database}"


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


@dataclass
class S3Config:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    bucket: str = "visiona"
    secure: bool = False


@dataclass
class StackConfig:
    admin_url: str
    database: str
    amqp_url: str
    ports: dict[str, int]
    state_dir: Path
    role_suffix: str = ""
    exchange: str = "visiona.events"
    queue_prefix: str = ""
    s3: S3Config | None = None
    # Server-side encryption the services ask S3 for. None: SSE-S3 on the SeaweedFS this stack
    # starts (it gets the key below), none on an external S3 whose setup is not ours to know.
    s3_sse: Literal["none", "s3", "kms"] | None = None
    # SeaweedFS derives its SSE-S3 key-encryption key from this. Fixed, so a dev stack's
    # objects stay readable across restarts.
    s3_sse_key: str = "visiona-local-sse-key-encryption"
    anthropic_api_key: str = "sk-ant-local"
    anthropic_base_url: str | None = None
    stripe_api_key: str = "sk_test_visiona_local"
    stripe_webhook_secret: str = "whsec_visiona_local_dev_secret"  # noqa: S105 (dev only)
    replicate_api_token: str = "r8_visiona_local"  # noqa: S105 (the emulator's dev token)
    # Keys the gateway's pseudonyms (erasure receipts, rate-limit buckets); one per stack.
    pseudonym_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    clerk_secret_key: str = "sk_test_visiona_local"  # noqa: S105 (the emulator's dev key)
    # Svix secrets are whsec_ + base64 of the key bytes.
    clerk_webhook_secret: str = "whsec_dmlzaW9uYS1sb2NhbC1jbGVyay13ZWJob29rcw=="  # noqa: S105
    log_format: str = "json"
    # Seconds between the provider emulators' webhook attempts (Replicate, Stripe, Clerk);
    # None keeps each emulator's own schedule.
    webhook_retry_delays_s: tuple[float, ...] | None = None
    # Signs the internal token of every gRPC call; one per stack, shared by all its processes.
    internal_token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    extra_env: dict[str, str] = field(default_factory=dict)
    # The provider emulators (Stripe, Replicate, Clerk) start empty instead of with what they
    # kept in ``state_dir/providers`` (visiona.emulators._state).
    fresh_providers: bool = False
    # The web app's origins (http://localhost:3000 under `make up`): the gateway lets their
    # pages call it (CORS, the cross-site guard) and accepts session tokens minted for them
    # (Clerk's authorized parties). The first is where Stripe Checkout and the billing portal
    # send the browser back to; with none, the gateway's own small pages take the return.
    web_origins: tuple[str, ...] = ("http://localhost:3000",)
    # Instances of each back service: the first is ``<service>`` on ports[service] (metrics
    # on ports["<service>-metrics"]), the others ``<service>-2``, … on ports of their own
    # (free ones unless ``ports`` names them). Every client's address lists them all, and
    # its channel takes them in turn (visiona.kit.metrics.grpcclient).
    instances: int = 1

    def __post_init__(self) -> None:
        if self.instances < 1:
            raise ValueError("a stack runs at least one instance of each service")
        for service in BACK_SERVICES:
            for name in self.instance_names(service)[1:]:
                for port in (name, f"{name}-metrics"):
                    if port not in self.ports:
                        self.ports[port] = free_port()

    def instance_names(self, service: str) -> list[str]:
        """The processes of a back service: ``training``, ``training-2``, …"""
        return [service, *(f"{service}-{n}" for n in range(2, self.instances + 1))]

    def grpc_target(self, service: str) -> str:
        """Where clients reach a back service: its one address, or every instance's as a
        gRPC ``ipv4:`` target."""
        addresses = [f"127.0.0.1:{self.ports[name]}" for name in self.instance_names(service)]
        return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)

    @property
    def web_url(self) -> str | None:
        return self.web_origins[0] if self.web_origins else None

    @property
    def clerk_issuer(self) -> str:
        return f"http://127.0.0.1:{self.ports['clerk']}"

    @property
    def s3_sse_mode(self) -> Literal["none", "s3", "kms"]:
        if self.s3_sse is not None:
            return self.s3_sse
        return "s3" if self.s3 is not None and "s3" in self.ports else "none"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['stripe']}"

    def stripe_prices_file(self) -> Path:
        """Billing's catalogue as the Stripe emulator's price seeds (the same price ids)."""
        from visiona.billing.domain.catalog import Catalog

        catalog_file = self.extra_env.get("BILLING_CATALOG_FILE") or os.environ.get(
            "BILLING_CATALOG_FILE"
        )
        path = self.state_dir / "stripe-prices.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog.load(Path(catalog_file) if catalog_file else None)
        path.write_text(json.dumps(catalog.stripe_prices(), indent=2))
        return path

    @property
    def backup_bucket(self) -> str | None:
        """Where ``visiona-ops backup`` writes and the gateway keeps its erasure journal:
        the app bucket's name with ``-backups`` (docs/adr/0014-backups-and-restore.md)."""
        return f"{self.s3.bucket}-backups" if self.s3 is not None else None

    def backup_env(self) -> dict[str, str]:
        """``visiona-ops``'s settings for this stack (``make backup``, the restore test)."""
        if self.s3 is None:
            raise ValueError("the stack has no S3: nothing to back up objects to")
        return {
            "BACKUP_DATABASE_URL": make_conninfo(self.admin_url, dbname=self.database),
            "BACKUP_S3_ENDPOINT": self.s3.endpoint,
            "BACKUP_S3_ACCESS_KEY": self.s3.access_key,
            "BACKUP_S3_SECRET_KEY": self.s3.secret_key,
            "BACKUP_S3_SECURE": str(self.s3.secure).lower(),
            "BACKUP_S3_SSE": self.s3_sse_mode,
            "BACKUP_BUCKET": f"{self.s3.bucket}-backups",
            "BACKUP_SOURCE_BUCKET": self.s3.bucket,
            "BACKUP_PSEUDONYM_KEY": self.pseudonym_key,
        }

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def database_url(self, role: str) -> str:
        return role_url(self.admin_url, role, self.database)

    def roles(self, service: str) -> ServiceRoles:
        return ServiceRoles(service, self.role_suffix)

    def service_env(self, service: str, instance: str | None = None) -> dict[str, str]:
        """A service's environment; ``instance`` names one of its instances (its ports)."""
        instance = instance or service
        p = service.upper() + "_"
        roles = self.roles(service)
        env = {
            f"{p}DATABASE_URL": self.database_url(roles.app),
            f"{p}MIGRATION_DATABASE_URL": self.database_url(roles.migrator),
            f"{p}AMQP_URL": self.amqp_url,
            f"{p}EVENTS_EXCHANGE": self.exchange,
            f"{p}QUEUE_PREFIX": self.queue_prefix,
            f"{p}GRPC_HOST": "127.0.0.1",
            f"{p}GRPC_PORT": str(self.ports[instance]),
            # /metrics on ports["<instance>-metrics"]; a stack that names none serves none
            # (two stacks on one machine must not both take the services' defaults).
            f"{p}METRICS_HOST": "127.0.0.1",
            f"{p}METRICS_PORT": str(self.ports.get(f"{instance}-metrics", 0)),
            f"{p}LOG_FORMAT": self.log_format,
            f"{p}INTERNAL_TOKEN_SECRET": self.internal_token_secret,
        }
        # Every service writes its part of a user's export (and the gateway zips them).
        if self.s3 is not None and service in SERVICES:
            env |= {
                f"{p}S3_ENDPOINT": self.s3.endpoint,
                f"{p}S3_ACCESS_KEY": self.s3.access_key,
                f"{p}S3_SECRET_KEY": self.s3.secret_key,
                f"{p}S3_BUCKET": self.s3.bucket,
                f"{p}S3_SECURE": str(self.s3.secure).lower(),
                f"{p}S3_SSE": self.s3_sse_mode,
            }
        if service == "billing":
            # Back from Stripe to the web app's billing page (it shows the credits arrive,
            # from the webhook), else to the gateway's own small pages.
            back = f"{self.web_url}/billing?checkout=" if self.web_url else None
            env |= {
                "BILLING_STRIPE_API_KEY": self.stripe_api_key,
                "BILLING_STRIPE_API_BASE": self.stripe_url,
                "BILLING_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
                "BILLING_CHECKOUT_SUCCESS_URL": (
                    f"{back}success&session_id={{CHECKOUT_SESSION_ID}}"
                    if back
                    else f"{self.gateway_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
                ),
                "BILLING_CHECKOUT_CANCEL_URL": (
                    f"{back}canceled" if back else f"{self.gateway_url}/billing/canceled"
                ),
                "BILLING_PORTAL_RETURN_URL": (
                    f"{self.web_url}/billing" if self.web_url else f"{self.gateway_url}/billing"
                ),
            }
        if service in ("training", "generation"):
            env |= {
                f"{p}BILLING_ADDR": self.grpc_target("billing"),
                f"{p}PUBLIC_WEBHOOK_BASE_URL": self.gateway_url,
                f"{p}REPLICATE_API_TOKEN": self.replicate_api_token,
            }
            if "replicate" in self.ports:
                env[f"{p}REPLICATE_BASE_URL"] = f"http://127.0.0.1:{self.ports['replicate']}"
        if service == "generation":
            env |= {
                "GENERATION_TRAINING_ADDR": self.grpc_target("training"),
                "GENERATION_PROMPTS_ADDR": self.grpc_target("prompts"),
            }
        if service == "prompts":
            env |= {
                "PROMPTS_ANTHROPIC_API_KEY": self.anthropic_api_key,
                "PROMPTS_ANTHROPIC_BASE_URL": self.anthropic_base_url
                or f"http://127.0.0.1:{self.ports['anthropic']}",
            }
        return env

    def gateway_env(self) -> dict[str, str]:
        # Its own schema (deletions, exports, idempotency keys, rate limits), the bus and S3.
        env = self.service_env("gateway")
        env |= {
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "GATEWAY_CLERK_ISSUER": self.clerk_issuer,
            "GATEWAY_CLERK_JWKS_URL": f"{self.clerk_issuer}/v1/jwks",
            "GATEWAY_CLERK_AUTHORIZED_PARTIES": ",".join(self.web_origins),
            "GATEWAY_CORS_ORIGINS": ",".join(self.web_origins),
            # The Backend API (erasing a user) and the user webhooks.
            "GATEWAY_CLERK_API_URL": f"{self.clerk_issuer}/v1",
            "GATEWAY_CLERK_SECRET_KEY": self.clerk_secret_key,
            "GATEWAY_CLERK_WEBHOOK_SECRET": self.clerk_webhook_secret,
            # Sessions come from the local dev issuer, not from a Clerk frontend.
            "GATEWAY_SESSION_RENEWAL_HINT": (
                "get a new one from the local dev issuer (`visiona login --dev NAME` for the "
                "CLI, `make -s token USER=NAME` for curl) and send the request again"
            ),
            "GATEWAY_PSEUDONYM_KEY": self.pseudonym_key,
            # The erasure journal, beside the backups it keeps from bringing a user back.
            "GATEWAY_ERASURE_JOURNAL_BUCKET": self.backup_bucket or "",
            "GATEWAY_LOG_FORMAT": self.log_format,
            # Live events (SSE) come from the run's exchange, in a queue under its prefix.
            "GATEWAY_AMQP_URL": self.amqp_url,
            "GATEWAY_EVENTS_EXCHANGE": self.exchange,
            "GATEWAY_QUEUE_PREFIX": self.queue_prefix,
        }
        for service in BACK_SERVICES:
            env[f"GATEWAY_{service.upper()}_ADDR"] = self.grpc_target(service)
        return env

    def clerk_env(self) -> dict[str, str]:
        return {
            "CLERK_DEV_KEY_DIR": str(self.state_dir / "clerk"),
            "CLERK_DEV_ISSUER": self.clerk_issuer,
            "CLERK_SECRET_KEY": self.clerk_secret_key,
            "CLERK_WEBHOOK_URL": f"{self.gateway_url}/webhooks/clerk",
            "CLERK_WEBHOOK_SECRET": self.clerk_webhook_secret,
        } | self.retry_env("CLERK_WEBHOOK_RETRY_DELAYS_S")

    def provider_state_env(self) -> dict[str, str]:
        """Where the provider emulators keep their state across restarts."""
        return {
            "VISIONA_EMULATOR_STATE_DIR": str(self.state_dir / "providers"),
            "VISIONA_EMULATOR_FRESH": "1" if self.fresh_providers else "0",
        }

    def retry_env(self, name: str) -> dict[str, str]:
        """An emulator's webhook schedule, when the stack sets one."""
        if self.webhook_retry_delays_s is None:
            return {}
        return {name: ",".join(str(d) for d in self.webhook_retry_delays_s)}

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        env["PYTHONUNBUFFERED"] = "1"
        return env | self.extra_env


_OWN_PREFIXES = ("GATEWAY_", "PROMPTS_", "BILLING_", "TRAINING_", "GENERATION_")


# How long a starting stack may take to answer /readyz (a loaded machine imports slowly).
READY_TIMEOUT_S = float(os.environ.get("VISIONA_STACK_READY_TIMEOUT_S", "120"))


def bin_path(name: str) -> str:
    """A console script of this environment (the venv's bin folder), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def processes(cfg: StackConfig) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every long-running process of the stack: name → (argv, environment)."""
    base = cfg.base_env()
    procs: dict[str, tuple[list[str], dict[str, str]]] = {}
    if cfg.s3 is not None and "s3" in cfg.ports:
        procs["s3"] = (weed_command(cfg), base | {"WEED_S3_SSE_KEY": cfg.s3_sse_key})
    procs["anthropic"] = (
        [bin_path("visiona-emulator"), "anthropic", "--port", str(cfg.ports["anthropic"])],
        base | {"ANTHROPIC_EMULATOR_API_KEY": cfg.anthropic_api_key},
    )
    procs["stripe"] = (
        [
            bin_path("visiona-emulator"),
            "stripe",
            "--port",
            str(cfg.ports["stripe"]),
            "--webhook-url",
            f"{cfg.gateway_url}/webhooks/stripe",
            "--webhook-secret",
            cfg.stripe_webhook_secret,
            "--prices",
            str(cfg.stripe_prices_file()),
        ],
        base | cfg.retry_env("STRIPE_EMULATOR_RETRY_DELAYS_S") | cfg.provider_state_env(),
    )
    if "replicate" in cfg.ports:
        procs["replicate"] = (
            [bin_path("visiona-emulator"), "replicate", "--port", str(cfg.ports["replicate"])],
            base | cfg.retry_env("REPLICATE_EMULATOR_RETRY_DELAYS_S") | cfg.provider_state_env(),
        )
    procs["clerk"] = (
        [bin_path("visiona-emulator"), "clerk", "--port", str(cfg.ports["clerk"])],
        base | cfg.clerk_env() | cfg.provider_state_env(),
    )
    for service in BACK_SERVICES:
        for name in cfg.instance_names(service):
            procs[name] = (
                [bin_path(f"visiona-{service}"), "serve"],
                base | cfg.service_env(service, name),
            )
    procs["gateway"] = ([bin_path("visiona-gateway"), "serve"], base | cfg.gateway_env())
    return procs


def stack_seaweedfs(cfg: StackConfig) -> SeaweedFS:
    """The stack's SeaweedFS as a :class:`SeaweedFS` of its own (``make up`` runs it beside
    the other processes, so that it can give it the time a clean stop takes)."""
    assert cfg.s3 is not None
    return SeaweedFS(
        cfg.state_dir,
        cfg.s3.access_key,
        cfg.s3.secret_key,
        sse_key=cfg.s3_sse_key,
        ports={name: cfg.ports[name] for name in ("s3", *WEED_PORTS)},
        log_path=cfg.state_dir / "logs" / "s3.log",
        web_origins=cfg.web_origins,
    )


def weed_command(cfg: StackConfig) -> list[str]:
    """SeaweedFS with S3 on the configured port; every other port derived from it."""
    assert cfg.s3 is not None
    return seaweedfs_command(cfg.state_dir / "s3", cfg.ports, cfg.s3, cfg.web_origins)


def seaweedfs_command(
    data: Path,
    ports: Mapping[str, int],
    s3: S3Config,
    web_origins: Sequence[str] | None = None,
) -> list[str]:
    """SeaweedFS serving S3 on ``ports["s3"]`` (its other servers on the ``WEED_PORTS``),
    keeping its data in ``data``, with one identity: ``s3``'s keys. Started with
    ``WEED_S3_SSE_KEY`` in its environment it does SSE-S3.

    ``web_origins``: the only pages its server-wide CORS answers (none: no page; None:
    SeaweedFS's default, any page). That answer is the one for preflights of a bucket's own
    path, where a browser's presigned POST goes; everything under the bucket follows the
    bucket's CORS rules (:func:`configure_bucket`)."""
    data.mkdir(parents=True, exist_ok=True)
    identities = data / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "visiona",
                        "credentials": [{"accessKey": s3.access_key, "secretKey": s3.secret_key}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    socket = data / "s3.sock"
    return [
        bin_path("weed"),
        # Its log on stderr (the caller's log file), not weed.* files in the temporary folder.
        "-logtostderr",
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *([f"-s3.allowedOrigins={','.join(web_origins)}"] if web_origins is not None else []),
        f"-s3.config={identities}",
        f"-master.port={ports['weed_master']}",
        f"-master.port.grpc={ports['weed_master_grpc']}",
        f"-volume.port={ports['weed_volume']}",
        f"-volume.port.grpc={ports['weed_volume_grpc']}",
        f"-filer.port={ports['weed_filer']}",
        f"-filer.port.grpc={ports['weed_filer_grpc']}",
        f"-filer.localSocket={data}/filer.sock",
        # Beside its data rather than in /tmp, when the path fits a socket address.
        *([f"-s3.localSocket={socket}"] if len(str(socket)) < _MAX_SOCKET_PATH else []),
        "-master.volumeSizeLimitMB=256",
        "-volume.max=32",
        "-volume.preStopSeconds=0",
    ]


WEED_PORTS = (
    "s3_grpc",
    "weed_master",
    "weed_master_grpc",
    "weed_volume",
    "weed_volume_grpc",
    "weed_filer",
    "weed_filer_grpc",
)


# A Unix socket's path must fit sockaddr_un (108 bytes with the terminating NUL).
_MAX_SOCKET_PATH = 100

# SeaweedFS's filer waits 15 s for its streams (the S3 server's metadata subscription) to end
# before it forces its gRPC server down, so a clean stop takes about that long.
SEAWEEDFS_STOP_TIMEOUT_S = 30.0


class SeaweedFS:
    """One SeaweedFS process serving S3 (the tests', the benchmarks' and ``make up``'s).

    :meth:`stop` stops it cleanly (SIGTERM, then SIGKILL only if it outlives the timeout) and
    removes the sockets it leaves in /tmp either way."""

    def __init__(
        self,
        data: Path,
        access_key: str,
        secret_key: str,
        *,
        sse_key: str | None = None,
        ports: Mapping[str, int] | None = None,
        log_path: Path | None = None,
        web_origins: Sequence[str] | None = None,
    ) -> None:
        self.data = data
        self.web_origins = tuple(web_origins) if web_origins is not None else None
        self.ports = dict(ports) if ports else {name: free_port() for name in ("s3", *WEED_PORTS)}
        self.s3 = S3Config(f"127.0.0.1:{self.ports['s3']}", access_key, secret_key)
        self.sse_key = sse_key
        self.log_path = log_path or data / "s3.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | ({"WEED_S3_SSE_KEY": self.sse_key} if self.sse_key else {})
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                seaweedfs_command(self.data / "s3", self.ports, self.s3, self.web_origins),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C at the terminal reaches the caller, who stops it.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while not wait_for_port(self.ports["s3"], 0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("SeaweedFS did not start:\n" + self.log()[-3000:])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = SEAWEEDFS_STOP_TIMEOUT_S) -> int | None:
        """Stop it and clean up after it; its exit status (negative: killed by that signal)."""
        process, self.process = self.process, None
        returncode = None if process is None else stop_process(process, timeout_s)
        remove_seaweedfs_sockets(self.ports.values())
        return returncode

    def discard(self) -> None:
        """Kill it and clean up after it: for a server whose data is thrown away, which need
        not wait the clean stop's 15 s."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()
        remove_seaweedfs_sockets(self.ports.values())


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; the exit status. A Ctrl-C while it
    waits kills at once."""
    if proc.poll() is None:
        proc.terminate()
    return wait_or_kill(proc, timeout_s)


def wait_or_kill(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """Wait up to ``timeout_s`` for a process already asked to stop, then SIGKILL it."""
    try:
        return proc.wait(timeout_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        return proc.wait()


def remove_seaweedfs_sockets(ports: Iterable[int]) -> None:
    """weed also listens on ``/tmp/seaweedfs-<part>[-grpc]-<port>.sock`` per port and leaves
    some behind even when it stops cleanly (all of them when killed): remove those of
    ``ports``."""
    for folder in {Path("/tmp"), Path(tempfile.gettempdir())}:  # noqa: S108 (weed's own choice)
        for port in ports:
            for sock in folder.glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


# What a browser does with the bucket: POST a photo through a presigned form (training's upload
# slots), GET and HEAD the images and exports it is handed presigned URLs for.
BUCKET_CORS_METHODS = ("GET", "HEAD", "POST")


def bucket_cors_xml(web_origins: Sequence[str]) -> bytes:
    """The bucket's CORS rules (S3's PutBucketCors body): the web app's pages, and no other,
    may POST, GET and HEAD with any header, and read the ETag of what they stored."""
    rule = "".join(f"<AllowedOrigin>{escape(o)}</AllowedOrigin>" for o in web_origins)
    rule += "".join(f"<AllowedMethod>{m}</AllowedMethod>" for m in BUCKET_CORS_METHODS)
    rule += "<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
    rule += "<MaxAgeSeconds>3600</MaxAgeSeconds>"
    return f"<CORSConfiguration><CORSRule>{rule}</CORSRule></CORSConfiguration>".encode()


def configure_bucket(s3: S3Config, web_origins: Sequence[str], timeout_s: float = 60.0) -> None:
    """Create the stack's bucket if it is missing (the services would, on their first start)
    and set its CORS rules to ``web_origins`` (:func:`bucket_cors_xml`; none: no rules, so
    no page may read from it). Waits up to ``timeout_s`` for a SeaweedFS still starting."""
    from minio import Minio
    from minio.error import S3Error

    client = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=s3.secure)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if not client.bucket_exists(s3.bucket):
                client.make_bucket(s3.bucket)
            break
        except S3Error as exc:
            if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                break
            if time.monotonic() > deadline:
                raise
        except Exception:
            # Its S3 port opens before its filer answers.
            if time.monotonic() > deadline:
                raise
        time.sleep(0.25)
    # The SDK has no CORS call: its own signed request path (_execute) makes S3's
    # PutBucketCors and DeleteBucketCors.
    if web_origins:
        body = bucket_cors_xml(web_origins)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 (S3 asks for it)
        client._execute(
            "PUT", s3.bucket, body=body, headers={"Content-MD5": md5}, query_params={"cors": ""}
        )
    else:
        client._execute("DELETE", s3.bucket, query_params={"cors": ""})


def provision_and_migrate(cfg: StackConfig) -> None:
    provision(cfg.admin_url, cfg.database, suffix=cfg.role_suffix)
    base = cfg.base_env()
    # Each service owns its schema, so their migrations are independent: run them side by side.
    running = {
        service: subprocess.Popen(
            [bin_path(f"visiona-{service}"), "migrate"],
            env=base | cfg.service_env(service) | {f"{service.upper()}_LOG_LEVEL": "WARNING"},
        )
        # Every schema, the gateway's included.
        for service in SERVICES
    }
    failed = [service for service, proc in running.items() if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"migrations failed for: {', '.join(failed)}")


def check_postgres(admin_url: str) -> str | None:
    """None when PostgreSQL answers, else a message naming the fix."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return (
            f"PostgreSQL is not reachable at {_safe(admin_url)} ({(str(exc).strip().splitlines() or ['error'])[0]}).\n"
            "  Start it:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
            "  or point VISIONA_ADMIN_DATABASE_URL at a running server (superuser)."
        )


def check_rabbitmq(amqp_url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(amqp_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 3):
            return None
    except OSError as exc:
        return (
            f"RabbitMQ is not reachable at {parts.hostname}:{parts.port or 5672} ({exc}).\n"
            "  Start it:  rabbitmq-server -detached\n"
            "  or point VISIONA_AMQP_URL at a running broker."
        )


def _safe(url: str) -> str:
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo("", **params)


def wait_for_port(port: int, timeout_s: float = 30.0, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), 0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class LocalStack:
    """Run a :class:`StackConfig` as child processes (tests and benchmarks).

    Logs go to ``state_dir/logs/<name>.log``. Processes can be stopped, killed and started
    one by one for fault tests.
    """

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs = processes(cfg)
        self.log_dir = cfg.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> None:
        argv, env = self.specs[name]
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self, name: str, timeout_s: float = 15.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if name == "s3":
            returncode = stop_process(proc, max(timeout_s, SEAWEEDFS_STOP_TIMEOUT_S))
            remove_seaweedfs_sockets(self.cfg.ports[p] for p in ("s3", *WEED_PORTS))
            return returncode
        return stop_process(proc, timeout_s)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.kill()
            proc.wait()

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def up(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        if "s3" in self.specs:
            self.start("s3")
            if not wait_for_port(self.cfg.ports["s3"], timeout_s):
                raise RuntimeError("SeaweedFS did not start:\n" + self.log("s3")[-3000:])
        if self.cfg.s3 is not None:
            # The stack's S3 is a SeaweedFS of its own or of the test session's: ours to set.
            configure_bucket(self.cfg.s3, self.cfg.web_origins, timeout_s)
        provision_and_migrate(self.cfg)
        for name in self.specs:
            if name not in self.procs:
                self.start(name)
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({proc.returncode}):\n{self.log(name)[-3000:]}"
                    )
            try:
                with urllib.request.urlopen(f"{self.cfg.gateway_url}/readyz", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"the stack did not become ready: {last}")

    def down(self, timeout_s: float = 15.0) -> None:
        """SIGTERM everything at once, then wait; whatever outlives the timeout (SeaweedFS:
        its own, longer one) is killed."""
        procs, self.procs = self.procs, {}
        for proc in procs.values():
            proc.terminate()
        start = time.monotonic()
        for name, proc in procs.items():
            limit = SEAWEEDFS_STOP_TIMEOUT_S if name == "s3" else timeout_s
            wait_or_kill(proc, max(0.1, start + limit - time.monotonic()))
        if "s3" in procs:
            remove_seaweedfs_sockets(self.cfg.ports[p] for p in ("s3", *WEED_PORTS))
