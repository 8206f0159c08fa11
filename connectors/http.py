"""The one HTTP client factory of the API connectors (requests, with our own retry loop).

- timeouts on connect and read (no request waits for ever);
- retries with exponential backoff on 429 and 5xx, honouring `Retry-After` (seconds or an HTTP
  date, capped), and on dropped connections, resets, timeouts and truncated bodies (a page whose
  JSON does not parse is fetched again: a connection dropped mid-page);
- 401/403 end at once with `AuthError` naming the source and the environment variables to check,
  never the secret; other 4xx end with `HttpError` (status, path).

Credentials live in the session (basic auth or a bearer header) and are never part of a URL,
a log line or an error message. Links returned by a server (next pages) are followed on the
configured base URL (`follow`), so a sandbox or test server answers them too.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

log = logging.getLogger("sla.connectors.http")

RETRY_STATUSES = {429, 500, 502, 503, 504}


class ConnectorError(Exception):
    """A sync cannot go on (one line, safe to print: no secret in it)."""


class AuthError(ConnectorError):
    pass


class HttpError(ConnectorError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value):
    """JSON text may escape half of a surrogate pair (`"\\ud83d"`: an emoji cut in two); such a
    string cannot be encoded as UTF-8, and storing it crashed the sync (found by fuzzing). The
    half character becomes U+FFFD, the rest of the text is kept."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


#: longest URL an error message quotes
MAX_URL_SHOWN = 160


def _safe_url(url: str) -> str:
    """The URL without user info or query (queries may carry tokens in some APIs), shortened so
    that an error naming it stays one readable line (a hostile id can make a path kilobytes long)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    safe = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return safe if len(safe) <= MAX_URL_SHOWN else safe[:MAX_URL_SHOWN - 3] + "..."


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass
class HttpClient:
    """JSON over HTTP for one source. Build with `make_client`."""

    source: str
    base_url: str
    session: requests.Session
    credential_hint: str = "the credentials"
    timeout: tuple[float, float] = (10.0, 60.0)
    max_attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    attempts_log: list = field(default_factory=list)  # (url path, outcome) for diagnostics/tests

    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))

    def follow(self, link: str) -> str:
        """A link returned by the server, rebased on our base URL (path and query kept)."""
        parts = urlsplit(link)
        base = urlsplit(self.base_url)
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        if response is not None:
            ra = retry_after_seconds(response.headers.get("Retry-After"))
            if ra is not None:
                return min(ra, self.max_retry_after)
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)

    def get_json(self, path: str, params: dict | list | None = None) -> dict:
        return self.request_json("GET", path, params=params)

    def request_json(self, method: str, path: str, **kwargs) -> dict:
        url = self.url(path)
        shown = _safe_url(url)
        last_problem = ""
        for attempt in range(1, self.max_attempts + 1):
            response = None
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
                status = response.status_code
                if status in (401, 403):
                    raise AuthError(
                        f"{self.source}: the server refused access (HTTP {status}) to {shown}; "
                        f"check {self.credential_hint}"
                    )
                if status in RETRY_STATUSES:
                    last_problem = f"HTTP {status}"
                elif status >= 400:
                    raise HttpError(f"{self.source}: HTTP {status} from {method} {shown}", status)
                else:
                    body = response.content  # reads the whole body: a dropped connection raises here
                    try:
                        data = json.loads(body.decode(response.encoding or "utf-8") if body else "null")
                    except (ValueError, UnicodeDecodeError):
                        last_problem = "incomplete or invalid JSON body"
                    else:
                        self.attempts_log.append((shown, status))
                        if _SURROGATE_ESCAPE.search(body):  # cheap test first: almost never true
                            data = _without_lone_surrogates(data)
                        return data
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                last_problem = f"connection problem ({type(exc).__name__})"
                response = None
            self.attempts_log.append((shown, last_problem))
            if attempt == self.max_attempts:
                break
            delay = self._delay(attempt, response)
            log.warning("%s: %s %s: %s; retry %d/%d in %.1fs", self.source, method, shown, last_problem,
                        attempt, self.max_attempts - 1, delay)
            self.sleep(delay)
        raise HttpError(f"{self.source}: {method} {shown} failed after {self.max_attempts} attempts ({last_problem})")

    def close(self) -> None:
        self.session.close()


def make_client(source: str, base_url: str, *, user: str | None = None, password: str | None = None,
                bearer: str | None = None, token_scheme: str = "Bearer", headers: dict | None = None,
                credential_hint: str = "the credentials",
                timeout: tuple[float, float] = (10.0, 60.0), max_attempts: int = 6, backoff: float = 0.5,
                sleep: Callable[[float], None] = time.sleep) -> HttpClient:
    """A client for one source: basic auth (`user`/`password`) or a token (`Authorization: <scheme> <token>`)."""
    if not base_url:
        raise ConnectorError(f"{source}: no server URL configured")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(f"{source}: server URL {_safe_url(base_url)!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConnectorError(f"{source}: put credentials in the environment, not in the URL")
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials picked up behind our back
    session.headers.update({"Accept": "application/json", "User-Agent": "sla-reporting-sync/1"})
    if headers:
        session.headers.update(headers)
    if bearer:
        session.headers["Authorization"] = f"{token_scheme} {bearer}"
    elif user is not None and password is not None:
        session.auth = (user, password)
    return HttpClient(source=source, base_url=base_url, session=session, credential_hint=credential_hint,
                      timeout=timeout, max_attempts=max_attempts, backoff=backoff, sleep=sleep)
