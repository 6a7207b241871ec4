"""One HTTP POST to a CRM: aiohttp, no redirects, verified TLS, bounded answer, refusals made final."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpbx import __version__
from vpbx.notify.ssrf import Refused, check_url

if TYPE_CHECKING:  # aiohttp loads with the first CRM request, not at start (issue 14: start time, idle memory)
    import aiohttp

MAX_ANSWER = 64 * 1024
EXCERPT = 300
USER_AGENT = f"vpbx/{__version__}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None
    body: bytes
    content_type: str | None
    retry_after: str | None
    latency: float
    error: str | None = None
    refused: bool = False  # the URL may not be called: final, not retried

    def excerpt(self) -> str | None:
        if not self.body:
            return None
        return self.body[:EXCERPT].decode("utf-8", "replace")


def client_session(private_ok: bool, limit: int = 512) -> aiohttp.ClientSession:
    import aiohttp

    from vpbx.notify.resolver import SafeResolver

    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, resolver=SafeResolver(private_ok),
                                     ttl_dns_cache=10, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}, auto_decompress=True,
                                 cookie_jar=aiohttp.DummyCookieJar())


_CHECKED: dict[tuple[str, bool], str | Refused] = {}  # a URL's verdict: the same few URLs are posted to all day
_CHECKED_MAX = 4096
_TIMEOUTS: dict[float, aiohttp.ClientTimeout] = {}


def _check(url: str, private_ok: bool) -> None:
    """``check_url``, remembered per URL (profiled: parsing it again cost ~3 us of every delivery)."""
    verdict = _CHECKED.get((url, private_ok))
    if verdict is None:
        try:
            verdict = check_url(url, private_ok)
        except Refused as exc:
            verdict = exc
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[(url, private_ok)] = verdict
    if isinstance(verdict, Refused):
        raise Refused(str(verdict))


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    found = _TIMEOUTS.get(seconds)
    if found is None:
        import aiohttp

        found = _TIMEOUTS[seconds] = aiohttp.ClientTimeout(total=seconds)
    return found


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if resp.content_length is not None and resp.content_length <= limit:
        return await resp.read()  # the usual small answer: one read
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], timeout: float,  # noqa: ASYNC109
               private_ok: bool) -> Answer:
    """POST ``body``; never raises (the outcome is in the Answer)."""
    import aiohttp

    started = time.perf_counter()
    try:
        _check(url, private_ok)
        async with http.post(url, data=body, headers=headers, allow_redirects=False,
                             timeout=_timeout(timeout)) as resp:
            data = await _read_limited(resp, MAX_ANSWER)
            return Answer(resp.status, data, resp.headers.get("Content-Type"), resp.headers.get("Retry-After"),
                          time.perf_counter() - started)
    except Refused as exc:
        return Answer(None, b"", None, None, time.perf_counter() - started, f"refused: {exc}", refused=True)
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, Refused)
        text = f"refused: {exc.os_error}" if refused else f"connect: {exc.os_error or exc}"
        return Answer(None, b"", None, None, time.perf_counter() - started, text[:500], refused=refused)
    except TimeoutError:
        return Answer(None, b"", None, None, time.perf_counter() - started, f"timeout after {timeout:g} s")
    except aiohttp.InvalidURL as exc:
        return Answer(None, b"", None, None, time.perf_counter() - started, f"refused: bad URL {exc}",
                      refused=True)
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Answer(None, b"", None, None, time.perf_counter() - started,
                      f"{type(exc).__name__}: {exc}"[:500])
