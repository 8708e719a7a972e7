"""The WebSocket handshake's Origin rule: same origin, or listed in ALLOWED_ORIGINS."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from taskstream.conf import conf


def origin_allowed(headers: dict[bytes, bytes]) -> bool:
    """True when a browser on ``Origin`` may open this socket.

    A request without ``Origin`` is not from a browser page; it is allowed, but the
    endpoint then ignores cookies, so cross-site socket hijacking has nothing to ride on.
    """
    host = headers.get(b"host", b"").decode("latin-1").lower()
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    raw = headers.get(b"origin")
    if raw is None:
        return True
    origin = raw.decode("latin-1").lower()
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if parts.netloc == host:
        return True
    normalized = f"{parts.scheme}://{parts.netloc}"
    return any(normalized == allowed.lower().rstrip("/") or allowed == "*"
               for allowed in conf.ALLOWED_ORIGINS)
