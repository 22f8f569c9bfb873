"""Who the client is, and under which URL the server answers: once per request, here.

- `CODOC_TRUSTED_PROXIES` (addresses or networks; default none, loopback included): only a
  direct peer listed there may set the client address (`X-Forwarded-For`), the scheme
  (`X-Forwarded-Proto`) and the host (`X-Forwarded-Host`). From anyone else these headers
  are ignored, so they can neither rotate a rate-limit identity nor forge links.
- `CODOC_ALLOWED_HOSTS` (default `localhost`, `127.0.0.1`, `[::1]`): the Host names (any
  port) a request may name; also allowed are the bind address (`serve --host`), the local
  address the connection came in on, and the host of `CODOC_BASE_URL`. Any other Host: 400.
- `CODOC_BASE_URL`: when set, every link, `Location` and `Content-Location` starts with it;
  otherwise with the scheme and the (checked) Host of the request.

`public_origin(request)` is the one function every answer builds its URLs from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from codoc_fhir import FHIR_VERSION
from codoc_fhir.config import Settings

Scope = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")


def host_name(host: str) -> str | None:
    """The name part of a Host value (`example.org:8000` -> `example.org`), lowercased;
    None when the value is not a host[:port] at all."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, port = host[: end + 1], host[end + 1 :]
        if end < 0 or (port and not port.startswith(":")):
            return None
        port = port[1:]
    else:
        name, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    return name or None


def _bracketed(address: str) -> str:
    """IPv6 addresses as they appear in a Host header."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _networks(text: str) -> tuple[Network, ...]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item.strip("[]"), strict=False) for item in items)


@dataclass(frozen=True)
class OriginPolicy:
    """The three settings, parsed once."""

    base_url: str | None
    allowed: frozenset[str]
    proxies: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        names = [item.strip().lower() for item in settings.allowed_hosts.split(",")]
        allowed = {name for name in names if name} or set(LOCAL_HOSTS)
        if settings.bind_host and settings.bind_host not in WILDCARD_BINDS:
            allowed.add(_bracketed(settings.bind_host.lower()))
        base = (settings.base_url or "").strip().rstrip("/").removesuffix(f"/v{FHIR_VERSION}")
        if base:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"CODOC_BASE_URL must be an http(s) URL, not {base!r}")
            allowed.add(host_name(parts.netloc) or "")
        return cls(base or None, frozenset(allowed), _networks(settings.trusted_proxies))

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    def allows(self, host: str, local_address: str | None) -> bool:
        name = host_name(host)
        if name is None:
            return False
        if "*" in self.allowed or name in self.allowed:
            return True
        return local_address is not None and name == _bracketed(local_address.lower())

    def client_of(self, forwarded_for: str, peer: str) -> str:
        """The first address, from the right, that is not one of our proxies."""
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


def _first(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").split(",")[0].strip() or None
    return None


def _all(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    return ",".join(value.decode("latin-1") for key, value in headers if key == name)


def _local_host(scope: Scope) -> str:
    """What a request without a Host header (HTTP/1.0) reached: the local address."""
    server = scope.get("server")
    if not server:
        return ""
    return f"{_bracketed(server[0])}:{server[1]}" if server[1] else _bracketed(server[0])


def public_origin(request: Request) -> str:
    """`scheme://host[/prefix]` the client reaches the server under (no trailing slash)."""
    origin = getattr(request.state, "public_origin", None)
    root = request.scope.get("root_path", "").rstrip("/")
    return origin or f"{request.url.scheme}://{request.url.netloc}{root}"


def public_base(request: Request) -> str:
    """The FHIR base URL: `public_origin(request)/v4.3.0`."""
    return f"{public_origin(request)}/v{FHIR_VERSION}"
