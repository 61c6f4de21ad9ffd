"""HTTP GET of a CRL and POST of an OCSP request: bounded, http(s) only, blocking.

Why the standard library: no maintained HTTP client (httpx, aiohttp) is a dependency of gateway,
and these are two plain requests a few times an hour (CRL refresh) or per partner certificate
per ``ocsp_max_age`` (OCSP). ``urllib`` honours the usual ``http_proxy``/``https_proxy``
variables and verifies TLS with the system's CAs. Callers on the event loop run these in a
thread (``asyncio.to_thread``); the revocation check itself runs in the pipeline's worker thread.

The opener is built by hand so that only http and https are spoken, redirects included (the
default one also follows ``ftp:`` and ``file:``). The body is read up to ``max_bytes`` + 1, so an
endless or huge answer is cut off, never held whole.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from typing import Final
from urllib.parse import urlsplit

from gateway.errors import TransportError

__all__ = ["RevocationSourceError", "http_get", "http_post"]

_USER_AGENT: Final = "gateway-revocation/1"


class RevocationSourceError(TransportError):
    """A CRL distribution point or OCSP responder gave nothing usable; the old state is kept and
    the request retried. ``str()`` names the URL and the reason (English, for the log)."""


def http_get(url: str, *, timeout: float, max_bytes: int, accept: str) -> bytes:
    """The body of ``GET url``; ``RevocationSourceError`` on any failure or a body too large."""
    # The scheme is checked in _request, and the opener speaks nothing but http(s).
    request = urllib.request.Request(url, headers=_headers(accept))  # noqa: S310
    return _request(request, timeout, max_bytes)


def http_post(
    url: str, body: bytes, *, content_type: str, accept: str, timeout: float, max_bytes: int
) -> bytes:
    """The body of ``POST url`` with ``body``; failures as for ``http_get``."""
    headers = _headers(accept) | {"Content-Type": content_type}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    return _request(request, timeout, max_bytes)


def _headers(accept: str) -> dict[str, str]:
    return {"Accept": accept, "User-Agent": _USER_AGENT}


def _request(request: urllib.request.Request, timeout: float, max_bytes: int) -> bytes:
    url = request.full_url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RevocationSourceError(f"{url}: only http:// and https:// URLs are fetched")
    try:
        with _opener().open(request, timeout=timeout) as response:
            body: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise RevocationSourceError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise RevocationSourceError(f"{url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise RevocationSourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if len(body) > max_bytes:
        raise RevocationSourceError(f"{url}: the answer is larger than {max_bytes} bytes")
    return body


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),  # any other scheme: URLError "unknown url type"
    ):
        opener.add_handler(handler)
    return opener
