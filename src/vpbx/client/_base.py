"""What the sync and async clients share and that does no I/O: bodies, queries, retry delays, stream parsing."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from vpbx.client.errors import VpbxError, error_for

M = TypeVar("M", bound=BaseModel)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "vpbx-client/1"
DEFAULT_PAGE = 100


def body_of(data: BaseModel | Mapping[str, Any] | Iterable[Any] | None) -> Any:
    """A request body: a model (only the fields set), a mapping or a list of either, as JSON-able data."""
    if data is None:
        return None
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", exclude_unset=True, by_alias=True)
    if isinstance(data, Mapping):
        return {k: body_of(v) if isinstance(v, BaseModel) else v for k, v in data.items()}
    if isinstance(data, str | bytes):
        return data
    return [body_of(item) if isinstance(item, BaseModel | Mapping) else item for item in data]


def when(value: datetime | str | None) -> str | None:
    """A date parameter: a datetime becomes ``YYYYmmddTHHMMSSZ`` (UTC); a string is sent as is."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as ``true``/``false``; ``with_`` is ``with``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == [] or (value is False and key in ("first_answered", "processMissed")):
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, datetime):
            value = when(value)
        out[key.rstrip("_")] = value
    return out


def decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def raise_for(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise error_for(response.status_code, decode(response))


def retry_delay(attempt: int, backoff: float, max_backoff: float, response: httpx.Response | None) -> float:
    """Exponential with jitter, or the server's ``Retry-After`` -- never more than ``max_backoff``."""
    if response is not None and (header := response.headers.get("Retry-After")):
        try:
            return min(max(float(header), 0.0), max_backoff)
        except ValueError:
            try:
                delta = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
                return min(max(delta, 0.0), max_backoff)
            except (TypeError, ValueError):
                pass
    return min(backoff * (2 ** attempt) * (0.5 + random.random() / 2), max_backoff)


def should_retry(method: str, response: httpx.Response | None, attempt: int, retries: int) -> bool:
    """429 always (nothing was done); 5xx and connection failures only for idempotent methods."""
    if attempt >= retries:
        return False
    if response is None:
        return method in IDEMPOTENT
    if response.status_code == 429:
        return True
    return response.status_code in RETRY_STATUSES and method in IDEMPOTENT


class JsonArrayItems:
    """Feed text chunks of a JSON array, take out each complete item: a long export never sits in memory."""

    def __init__(self) -> None:
        self.buffer = ""
        self.started = False
        self.ended = False
        self._decoder = json.JSONDecoder()

    def feed(self, chunk: str) -> Iterator[Any]:
        self.buffer += chunk
        while not self.ended:
            text = self.buffer.lstrip()
            if not self.started:
                if not text:
                    break
                if text[0] != "[":
                    raise VpbxError(0, "the answer is not a JSON array", text[:200])
                self.started = True
                text = text[1:]
            text = text.lstrip().removeprefix(",").lstrip()
            if text.startswith("]"):
                self.ended = True
                self.buffer = text[1:]
                break
            try:
                item, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                self.buffer = text  # incomplete: wait for more
                break
            if end == len(text) and not isinstance(item, dict | list):
                self.buffer = text  # a bare number may go on in the next chunk
                break
            self.buffer = text[end:]
            yield item

    def close(self) -> None:
        if not self.ended:
            raise VpbxError(0, "the JSON array ended early", self.buffer[:200])


def next_start(info: Mapping[str, Any] | None) -> int | None:
    value = (info or {}).get("next")
    return int(value) if isinstance(value, int) else None
