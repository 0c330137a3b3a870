"""Where the CLI keeps its session: ``$VISIONA_CONFIG`` or ``~/.config/visiona/config.json``.

The file holds the gateway URL and the session token, readable by the user only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_GATEWAY = "http://127.0.0.1:8000"
DEFAULT_DEV_ISSUER = "http://127.0.0.1:8104"


def config_path() -> Path:
    explicit = os.environ.get("VISIONA_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "visiona" / "config.json"


@dataclass
class Session:
    gateway: str = DEFAULT_GATEWAY
    token: str | None = None
    user: str | None = None

    @classmethod
    def load(cls) -> Session:
        path = config_path()
        if not path.exists():
            return cls(gateway=os.environ.get("VISIONA_GATEWAY", DEFAULT_GATEWAY))
        data = json.loads(path.read_text())
        session = cls(**{k: v for k, v in data.items() if k in ("gateway", "token", "user")})
        if os.environ.get("VISIONA_GATEWAY"):
            session.gateway = os.environ["VISIONA_GATEWAY"]
        return session

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=2)
        return path
