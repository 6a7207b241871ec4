"""Recordings in an S3-compatible object store (AWS S3, MinIO, Ceph, ...): the recording store's other backend.

``VPBX_RECORDING_STORE=s3://bucket/prefix?endpoint=http://host:port&region=...`` (no ``endpoint``: AWS itself).
Credentials come from the standard chain boto3 reads (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, a
profile, an instance role), never from the URL, so the setting holds no secret and nothing here logs one.
boto3 is blocking: every method runs in a worker thread (the callers use ``asyncio.to_thread`` or Starlette's
thread pool). Every failure of the store becomes :class:`ObjectStoreError` with a short reason a person can read
("recording store unavailable", "recording store full", ...) and never the endpoint's answer verbatim.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CHUNK = 64 * 1024
# Codes S3-compatible stores answer when they have no room (MinIO's own, AWS quota, HTTP 507).
_FULL_CODES = {"XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "QuotaExceeded", "InsufficientStorage",
               "StorageFull", "507"}
_REFUSED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


class ObjectStoreError(Exception):
    """The store refused or could not be reached; ``reason`` is what history and the link say."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "calls/" (always ending with "/")
    endpoint: str | None
    region: str | None

    def __str__(self) -> str:  # for messages: no secret is ever part of a location
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint}" if self.endpoint else "")


def is_object_store(location: str) -> bool:
    return location.strip().lower().startswith("s3://")


def parse_location(location: str) -> S3Location:
    """``s3://bucket[/prefix][?endpoint=http(s)://host:port][&region=name]``; ValueError saying what is wrong."""
    try:
        parts = urlsplit(location.strip())
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme.lower() != "s3":
        raise ValueError("expected s3://bucket/prefix (empty: recordings on disk)")
    if "@" in parts.netloc:
        raise ValueError("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    bucket = parts.netloc
    if not bucket or not all(c.isalnum() or c in "-._" for c in bucket):
        raise ValueError("a bucket name is needed: s3://bucket/prefix")
    prefix = parts.path.strip("/")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ("endpoint", "region"):
            raise ValueError(f"unknown option {key!r} (endpoint, region)")
        options[key] = value
    endpoint = options.get("endpoint") or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname:
            raise ValueError("endpoint must be http(s)://host[:port]")
        if "@" in ep.netloc:
            raise ValueError("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return S3Location(bucket, f"{prefix}/" if prefix else "", endpoint, options.get("region") or None)


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason for a boto3/botocore failure."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _FULL_CODES or status == "507":
            return "recording store full"
        if code in _REFUSED_CODES or status == "403":
            return "recording store refused access (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        if code == "NoSuchBucket":
            return "recording store has no such bucket"
        if status.startswith("5"):
            return "recording store unavailable"
        return f"recording store error: {code or status or 'unknown'}"[:120]
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "recording store: no credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ConnectTimeoutError |
                  bx.ReadTimeoutError | bx.HTTPClientError):
        return "recording store unavailable"
    return f"recording store error: {type(exc).__name__}"


def _missing(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class ObjectStore:
    """One bucket (and prefix) of an S3-compatible store, through one thread-safe boto3 client made on first use."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._client: Any = None
        self._lock = threading.Lock()

    def key(self, name: str) -> str:
        return self.location.prefix + name

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                # Short connect timeout and few retries: a store that is down must fail the save quickly (the call
                # has ended; history waits on it), not after boto3's default minute.
                config = Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"},
                                s3={"addressing_style": "path"} if self.location.endpoint else None)
                try:
                    self._client = boto3.session.Session().client(
                        "s3", endpoint_url=self.location.endpoint, region_name=self.location.region, config=config)
                except Exception as exc:
                    raise ObjectStoreError(_reason(exc)) from None
            return self._client

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3(), method)(Bucket=self.location.bucket, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            if _missing(exc):
                raise FileNotFoundError(kwargs.get("Key", "")) from None
            raise ObjectStoreError(_reason(exc)) from None

    def put(self, name: str, data: bytes, content_type: str) -> None:
        self._call("put_object", Key=self.key(name), Body=data, ContentType=content_type)

    def put_file(self, name: str, path: Path, content_type: str) -> None:
        """Upload a file (multipart for a large one: memory stays flat)."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3().upload_file(str(path), self.location.bucket, self.key(name),
                                   ExtraArgs={"ContentType": content_type})
        except S3UploadFailedError as exc:
            cause = exc.__cause__ or exc.__context__
            raise ObjectStoreError(_reason(cause) if cause else "recording store error: upload failed") from None
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStoreError(_reason(exc)) from None

    def size(self, name: str) -> int | None:
        """The object's size in bytes, None when there is none."""
        try:
            head = self._call("head_object", Key=self.key(name))
        except FileNotFoundError:
            return None
        return int(head["ContentLength"])

    def read_text(self, name: str, limit: int = 1024) -> str | None:
        try:
            got = self._call("get_object", Key=self.key(name), Range=f"bytes=0-{limit - 1}")
        except FileNotFoundError:
            return None
        body = got["Body"]
        try:
            return bytes(body.read(limit)).decode("utf-8", errors="replace")
        finally:
            body.close()

    def open(self, name: str) -> tuple[int, Iterator[bytes]]:
        """(size, chunks) of an object, streamed (memory stays flat); FileNotFoundError when there is none.
        The request is made here, so a store that is down fails before a response starts."""
        got = self._call("get_object", Key=self.key(name))
        body = got["Body"]

        def chunks() -> Iterator[bytes]:
            from botocore.exceptions import BotoCoreError

            try:
                yield from body.iter_chunks(CHUNK)
            except BotoCoreError as exc:  # mid-stream: the response is already under way, it just ends short
                raise ObjectStoreError(_reason(exc)) from None
            finally:
                body.close()

        return int(got["ContentLength"]), chunks()

    def download(self, name: str, path: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3().download_file(self.location.bucket, self.key(name), str(path))
        except (BotoCoreError, ClientError) as exc:
            if _missing(exc):
                raise FileNotFoundError(name) from None
            raise ObjectStoreError(_reason(exc)) from None

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """(name under the prefix, last modified) of every object under the prefix."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self._s3().get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=self.location.prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield str(obj["Key"])[len(self.location.prefix):], obj["LastModified"]
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStoreError(_reason(exc)) from None

    def delete(self, names: list[str]) -> int:
        """Delete objects (1,000 per request, S3's limit); returns how many the store confirmed."""
        deleted = 0
        for i in range(0, len(names), 1000):
            batch = [{"Key": self.key(n)} for n in names[i:i + 1000]]
            answer = self._call("delete_objects", Delete={"Objects": batch, "Quiet": False})
            deleted += len(answer.get("Deleted", []))
        return deleted
