"""One HTTP POST to a CRM: no redirects, verified TLS, bounded answer, refusals made final."""

from __future__ import annotations

import time
from dataclasses import dataclass

from vpbx import __version__
from vpbx.notify.http1 import AnswerError, Client, ConnectError
from vpbx.notify.ssrf import Refused

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


def client_session(private_ok: bool, limit: int = 512) -> Client:
    """Kept-alive connections to CRMs (``vpbx.notify.http1``), at most ``limit`` requests at once."""
    return Client(private_ok, limit, USER_AGENT, MAX_ANSWER)


async def post(http: Client, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:  # noqa: ASYNC109
    """POST ``body``; never raises (the outcome is in the Answer). The SSRF guard is the client's."""
    started = time.perf_counter()
    try:
        resp = await http.post(url, body, headers, timeout)
        return Answer(resp.status, resp.body, resp.header(b"content-type"), resp.header(b"retry-after"),
                      time.perf_counter() - started)
    except Refused as exc:
        return Answer(None, b"", None, None, time.perf_counter() - started, f"refused: {exc}", refused=True)
    except TimeoutError:
        return Answer(None, b"", None, None, time.perf_counter() - started, f"timeout after {timeout:g} s")
    except ConnectError as exc:
        return Answer(None, b"", None, None, time.perf_counter() - started, f"connect: {exc}"[:500])
    except (AnswerError, OSError, ValueError) as exc:
        return Answer(None, b"", None, None, time.perf_counter() - started,
                      f"{type(exc).__name__}: {exc}"[:500])
