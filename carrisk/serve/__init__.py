"""The web app: a risk-calculator page and an HTTP API over one saved model (``carrisk serve``).

Needs the optional extra ``carrisk[serve]`` (FastAPI and uvicorn). :func:`create_app` builds the application over
a loaded model; :func:`app_from_bundle` loads a bundle and builds it; :func:`run_server` serves it with uvicorn.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carrisk.serve.app import RESEARCH_USE_WARNING, ServeSettings, create_app

__all__ = [
    "RESEARCH_USE_WARNING",
    "ServeSettings",
    "ServerConfig",
    "app_from_bundle",
    "app_from_environment",
    "create_app",
    "is_loopback",
    "read_token",
    "run_server",
]

#: Shortest accepted bearer token (characters).
MIN_TOKEN_LENGTH = 16
MODEL_CARD_FILE = "MODEL_CARD.md"
#: Environment variable carrying the :class:`ServerConfig` to worker processes.
CONFIG_ENV = "CARRISK_SERVE_CONFIG"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str | os.PathLike[str]) -> str:
    """Read a bearer token from a file (surrounding whitespace removed).

    Raises
    ------
    ValueError
        If the file cannot be read, or the token is shorter than :data:`MIN_TOKEN_LENGTH` or contains spaces.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the token file {path}: {err}") from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ValueError(
            f"the token in {path} must be at least {MIN_TOKEN_LENGTH} characters without spaces "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))' > token.txt)"
        )
    return token


def app_from_bundle(
    path: str | os.PathLike[str],
    settings: ServeSettings | None = None,
    *,
    allow_version_mismatch: bool = False,
    warm_up: bool = True,
) -> Any:
    """Load the bundle at ``path`` once (checksum and versions verified) and build the app over it.

    The manifest and the model card (``MODEL_CARD.md`` beside it, if any) are read now; the app itself never
    touches a file.
    """
    from carrisk.bundle import load_model, read_manifest

    model = load_model(path, allow_version_mismatch=allow_version_mismatch)
    card = Path(path) / MODEL_CARD_FILE
    return create_app(
        model,
        manifest=read_manifest(path),
        model_card=card.read_text(encoding="utf-8") if card.is_file() else None,
        settings=settings,
        warm_up=warm_up,
    )


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs to build its app; passed to worker processes as JSON.

    The token travels as the path of its file, never as its value.
    """

    model_dir: str
    token_file: str | None = None
    max_patients: int = ServeSettings.max_patients
    rate_limit_per_s: float = ServeSettings.rate_limit_per_s
    allow_version_mismatch: bool = False

    def check(self) -> None:
        """Read the token file and the bundle's manifest (cheap checks, without loading the model)."""
        from carrisk.bundle import read_manifest

        if self.token_file:
            read_token(self.token_file)
        read_manifest(self.model_dir)

    def build(self) -> Any:
        """Read the token, load the bundle and build the app (raises ValueError, BundleError, FileNotFoundError)."""
        settings = ServeSettings(
            token=read_token(self.token_file) if self.token_file else None,
            max_patients=self.max_patients,
            rate_limit_per_s=self.rate_limit_per_s,
        )
        return app_from_bundle(self.model_dir, settings, allow_version_mismatch=self.allow_version_mismatch)


def app_from_environment() -> Any:
    """App factory of each worker process when ``workers > 1`` (reads :data:`CONFIG_ENV`)."""
    return ServerConfig(**json.loads(os.environ[CONFIG_ENV])).build()


def run_server(
    config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, *, workers: int = 1, log_level: str = "info"
) -> None:
    """Serve the app described by ``config`` with uvicorn until interrupted.

    With ``workers > 1`` each worker process loads its own copy of the model (memory grows accordingly) and
    keeps its own rate-limit buckets. The access log carries the client address, request line and status, never
    a body; proxy headers are not trusted (the rate limit keys on the TCP peer); each process serves at most 64
    connections at once (503 beyond).
    """
    import uvicorn

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "proxy_headers": False,
        "server_header": False,
        "limit_concurrency": 64,
        "timeout_keep_alive": 5,
    }
    if workers == 1:
        uvicorn.run(config.build(), **options)
        return
    config.check()  # fail here, once, with a clear message, rather than in every worker
    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    uvicorn.run("carrisk.serve:app_from_environment", factory=True, workers=workers, **options)
