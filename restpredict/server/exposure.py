"""The warning a server gets when it listens beyond loopback without an API key."""

from __future__ import annotations

import ipaddress

from restpredict.settings import Settings

__all__ = ["exposure_warning"]


def exposure_warning(settings: Settings) -> str | None:
    """A warning when the server listens beyond loopback and anyone reaching it may call it."""
    if settings.api_key is not None or _is_loopback(settings.host):
        return None
    return (
        f"listening on {settings.host} without an API key: anyone who can reach this port can "
        "use the model; set RESTPREDICT_API_KEY or --api-key-file"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
