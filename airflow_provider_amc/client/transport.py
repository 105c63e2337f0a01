"""Proxy and TLS decisions shared by both transports (requests on workers, aiohttp in the triggerer).

The rules are ``requests``' (the ones ``HttpHook`` users know), decided here once and handed to
both drivers explicitly, so the worker and the triggerer always agree:

* ``proxies`` (connection extra): ``{"https": "http://proxy:3128", "http": ..., "all": ...,
  "https://host": ...}``; it wins over the environment.
* ``trust_env`` (default true): also honour ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
  ``NO_PROXY``, and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` for the CA bundle.
* ``verify`` (default true): ``false`` turns TLS verification off; a path names a CA bundle file
  (or a directory of hashed certificates) used instead of the default (certifi's bundle).
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import requests.utils

from airflow_provider_amc.client.errors import AmcConfigError
from airflow_provider_amc.client.settings import AmcSettings

#: The environment variables that can give an http(s) URL a proxy (requests reads both cases).
PROXY_ENV = tuple(f"{scheme}_proxy" for scheme in ("http", "https", "all")) + tuple(
    f"{scheme}_PROXY" for scheme in ("HTTP", "HTTPS", "ALL")
)
#: Environment variables naming a CA bundle (requests' rules; read when ``trust_env`` is true).
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def proxy_for(settings: AmcSettings, url: str) -> str | None:
    """The proxy URL for ``url``: the connection's ``proxies``, then (with ``trust_env``) the
    environment's, ``NO_PROXY`` applying to the environment's proxies only (as in requests)."""
    proxies = dict(settings.proxies or {})
    if settings.trust_env and any(os.environ.get(name) for name in PROXY_ENV):
        for scheme, proxy in requests.utils.get_environ_proxies(url).items():
            proxies.setdefault(scheme, proxy)
    if not proxies:
        return None
    return requests.utils.select_proxy(url, proxies)


def ca_bundle(settings: AmcSettings) -> str | bool:
    """``False`` (verification off) or the CA bundle path (file or directory) to verify with."""
    if settings.verify is False:
        return False
    if isinstance(settings.verify, str):
        return settings.verify
    if settings.trust_env:
        for name in CA_BUNDLE_ENV:
            if os.environ.get(name):
                return os.environ[name]
    return requests.utils.DEFAULT_CA_BUNDLE_PATH


class Transport:
    """The proxy/TLS decisions of one client (one hook, one trigger run), made once per origin.

    The environment is read when the client is made and for each new origin, never cached across
    clients: a new trigger sees the proxy variables and the CA bundle as they are now.
    """

    def __init__(self, settings: AmcSettings) -> None:
        self.settings = settings
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._verify: str | bool | None = None

    def proxy(self, url: str) -> str | None:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._proxies:
            self._proxies[origin] = proxy_for(self.settings, url)
        return self._proxies[origin]

    @property
    def verify(self) -> str | bool:
        """requests' ``verify=``."""
        if self._verify is None:
            self._verify = ca_bundle(self.settings)
        return self._verify

    def ssl(self, url: str) -> ssl.SSLContext | bool:
        """aiohttp's ``ssl=`` (its default, True, for plain http: nothing to verify)."""
        return ssl_context(self.settings) if url.startswith("https:") else True


@dataclass(frozen=True)
class ProxyRoute:
    """A proxy URL without credentials and the ``Proxy-Authorization`` header they become."""

    url: str
    headers: dict[str, str]

    def __repr__(self) -> str:
        return f"ProxyRoute({self.url})"


def proxy_route(proxy: str) -> ProxyRoute:
    """Split ``http://user:pass@proxy:3128`` into the bare URL and a basic-auth header (aiohttp)."""
    parts = urlsplit(proxy)
    if not parts.username:
        return ProxyRoute(proxy, {})
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    token = base64.b64encode(user_pass.encode()).decode()
    return ProxyRoute(urlunsplit(parts._replace(netloc=netloc)), {"Proxy-Authorization": f"Basic {token}"})


def ssl_context(settings: AmcSettings) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl=`` gets: ``False`` when verification is off, else a context trusting
    exactly the CA bundle requests would use (not the system store aiohttp defaults to)."""
    bundle = ca_bundle(settings)
    if bundle is False:
        return False
    path = str(bundle)
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise AmcConfigError(f"verify: the CA bundle {path!r} cannot be read: {exc.strerror}") from None
    return _context(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _context(path: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    """One context per CA bundle *version* (path, mtime, size): a changed bundle file is reloaded;
    loading certifi's bundle costs milliseconds, too much to repeat for every poll."""
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)
