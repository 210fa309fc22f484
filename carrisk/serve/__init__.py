"""The web app: a risk-calculator page and an HTTP API over one saved model (``carrisk serve``).

Needs the optional extra ``carrisk[serve]`` (FastAPI and uvicorn). :func:`create_app` builds the application over
a loaded model; :func:`app_from_bundle` loads a bundle and builds it; :func:`run_server` serves it with uvicorn.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from carrisk.serve.app import RESEARCH_USE_WARNING, ServeSettings, create_app

__all__ = [
    "RESEARCH_USE_WARNING",
    "ServeSettings",
    "app_from_bundle",
    "create_app",
    "is_loopback",
    "read_token",
    "run_server",
]

#: Shortest accepted bearer token (characters).
MIN_TOKEN_LENGTH = 16
MODEL_CARD_FILE = "MODEL_CARD.md"


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


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn until interrupted.

    The access log carries the client address, request line and status, never a body; proxy headers are not
    trusted (the rate limit keys on the TCP peer); at most 64 connections are served at once (503 beyond).
    """
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        limit_concurrency=64,
        timeout_keep_alive=5,
    )
