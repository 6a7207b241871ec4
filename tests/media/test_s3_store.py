"""Recordings in an S3-compatible object store: moto's S3 server on loopback (a real HTTP S3 endpoint, in a thread),
the vpbx server's ``recording_store`` pointing at it. Saved and served through the signed link, the store going
down (the save fails cleanly, the link says why), and the retention purging old objects."""

from __future__ import annotations

import array
import io
import logging
import os
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from tests.conftest import store_url
from tests.engine.test_records import link_of, talk
from tests.engine.test_rules import Env, make_env

from vpbx.engine import records
from vpbx.services import audio
from vpbx.settings import Settings
from vpbx.telephony.media.objectstore import _reason, parse_location
from vpbx.telephony.media.recordings import RecordingStore
from vpbx.testing.server import ServerThread, create_tenant, free_port, retire_tenant

BUCKET = "vpbx-recordings"
SECRET = "s3-secret-that-must-never-be-logged"
ENV = {"AWS_ACCESS_KEY_ID": "vpbx-test-key", "AWS_SECRET_ACCESS_KEY": SECRET}


class S3:
    """moto's S3 server on a fixed loopback port, so it can be stopped and started again where the store expects
    it (moto keeps its buckets in the process: a restarted server has them still)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.location = f"s3://{BUCKET}/calls?endpoint={self.endpoint}&region=us-east-1"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        client = self.client()
        if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            if self._server._server is not None:  # moto's stop() leaves the socket listening: close it (down)
                self._server._server.server_close()
            self._server = None

    def client(self) -> Any:
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self) -> set[str]:
        listed = self.client().list_objects_v2(Bucket=BUCKET, Prefix="calls/")
        return {str(o["Key"]) for o in listed.get("Contents", [])}


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        yield


@pytest.fixture(scope="module")
def s3_port() -> int:
    return free_port()


@pytest.fixture
def s3(aws_env: None, s3_port: int) -> Iterator[S3]:
    store = S3(s3_port)
    store.start()
    client = store.client()
    for key in store.keys():  # moto's buckets live as long as the process: each test starts with an empty one
        client.delete_object(Bucket=BUCKET, Key=key)
    yield store
    store.stop()


@pytest.fixture(scope="module")
def s3_server(backend: str, aws_env: None, s3_port: int,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"s3-{backend}")
    srv = ServerThread(Settings(db=store_url(backend, tmp), home=tmp, demo=False, port=0, clock="virtual",
                                recording_store=S3(s3_port).location)).start()
    yield srv
    srv.stop()


@pytest.fixture
def env(s3: S3, s3_server: ServerThread) -> Iterator[Env]:
    tenant = create_tenant(s3_server)
    yield from make_env(s3_server, tenant)
    retire_tenant(s3_server, tenant)


def token_of(env: Env, link: str) -> records.Token:
    token = records.parse(env.server.runtime, link.rsplit("/", 1)[1])
    assert token is not None
    return token


def test_a_recording_in_s3_is_what_the_link_serves(env: Env, s3: S3) -> None:
    talk(env, seconds=5)
    link = link_of(env) or ""
    token = token_of(env, link)
    store = RecordingStore(env.server.settings.home, location=s3.location)
    pcm = array.array("h", [1234, -1234] * 4000)  # 1 s, distinguishable from the simulator's tones
    outcome = store.save_pcm(token.domain_id, token.callid, pcm)
    assert outcome.ok and outcome.path is None and outcome.seconds == 1.0
    assert s3.keys() == {f"calls/{token.domain_id}/{token.callid}.wav"}
    assert not store.path(token.domain_id, token.callid).parent.exists()  # nothing on the local disk
    with httpx.Client(timeout=30) as anon:
        r = anon.get(link, params={"format": "wav"})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert r.headers["content-length"] == str(44 + 2 * 8000)  # streamed from the store, its size known
        with wave.open(io.BytesIO(r.content)) as w:
            assert w.getnframes() == 8000 and w.readframes(2) == array.array("h", [1234, -1234]).tobytes()
        if not audio.can_encode_mp3():
            pytest.skip("sox has no MP3 encoder (Debian: libsox-fmt-mp3)")
        mp3 = anon.get(link)  # MP3 by default
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        with wave.open(io.BytesIO(audio.convert_to_wav8k(mp3.content, "mp3"))) as w:
            assert abs(w.getnframes() / 8000 - 1.0) < 0.2  # the stored recording, not the simulator's 5 s
        mp3_key = f"calls/{token.domain_id}/{token.callid}.mp3"
        assert mp3_key in s3.keys()  # encoded once, kept beside the WAV in the store
        made = s3.client().head_object(Bucket=BUCKET, Key=mp3_key)["ETag"]
        again = anon.get(link)
        assert again.content == mp3.content
        assert s3.client().head_object(Bucket=BUCKET, Key=mp3_key)["ETag"] == made


def test_a_store_that_is_down_fails_the_recording_not_the_call(env: Env, s3: S3,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    talk(env, seconds=5)
    link = link_of(env) or ""
    token = token_of(env, link)
    s3.stop()
    store = RecordingStore(env.server.settings.home, location=s3.location)
    with caplog.at_level(logging.DEBUG):
        outcome = store.save_pcm(token.domain_id, token.callid, array.array("h", [1000] * 8000))
        assert not outcome.ok and outcome.error == "recording store unavailable"
        assert store.failure(token.domain_id, token.callid) == "recording store unavailable"  # no store needed
        with httpx.Client(timeout=30) as anon:
            r = anon.get(link)
            assert r.status_code == 404 and r.json()["message"] == "Recording failed: recording store unavailable"
            talk(env, seconds=3, frm="79101234568")  # a call whose recording was never saved, store still down
            env.crm.wait_for("history", 2)
            other = next(h["link"] for h in env.crm.got if h["cmd"] == "history" and h.get("link") != link)
            r = anon.get(other)
            assert r.status_code == 503 and r.headers["retry-after"] == "30"  # not known to have failed: later
            assert r.json()["message"] == "Recording unavailable: recording store unavailable"
        assert store.purge(now=time.time() + 400 * 86400) == 1  # the local marker; the store is skipped, no error
    assert SECRET not in caplog.text and SECRET not in repr(outcome)
    s3.start()  # back up: the next call's recording is stored and served
    token2 = token_of(env, other)
    assert store.save_pcm(token2.domain_id, token2.callid, array.array("h", [0] * 800)).ok
    with httpx.Client(timeout=30) as anon:
        assert anon.get(other, params={"format": "wav"}).status_code == 200


def test_the_retention_purges_old_objects(s3: S3, tmp_path: Path) -> None:
    store = RecordingStore(tmp_path, retention_days=30, location=s3.location)
    assert store.save_pcm(1, "old1", array.array("h", [0] * 800)).ok
    saved = time.time()
    while int(time.time()) == int(saved):  # S3 times have whole seconds: the next save is a second later
        time.sleep(0.05)
    assert store.save_pcm(1, "new1", array.array("h", [0] * 800)).ok
    store._fail_shared(1, "gone1", "rtpengine wrote no recording")  # a failure marker in the store too
    assert s3.keys() == {"calls/1/old1.wav", "calls/1/new1.wav", "calls/1/gone1.failed"}
    new_time = s3.client().head_object(Bucket=BUCKET, Key="calls/1/new1.wav")["LastModified"]
    assert RecordingStore(tmp_path, retention_days=0, location=s3.location).purge() == 0  # 0: kept forever
    # 30 days after new1 was stored: old1 is past the retention, new1 (and the marker, as new) not yet.
    assert store.purge(now=new_time.timestamp() + 30 * 86400) == 1
    assert s3.keys() == {"calls/1/new1.wav", "calls/1/gone1.failed"}
    assert store.find(1, "old1") is None and store.find(1, "new1") is not None
    assert store.purge(now=time.time() + 31 * 86400) == 3  # both objects and the local marker


@pytest.mark.parametrize("bad", ["s3://", "s3://user:pw@bucket/x", "s3://b/x?endpoint=ftp://h", "s3://b?colour=red",
                                 "http://bucket/x"])
def test_bad_store_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_location(bad)
    assert parse_location("s3://b/a/b/?region=eu-1").prefix == "a/b/"


@pytest.mark.parametrize(("code", "status", "reason"), [
    ("XMinioStorageFull", 507, "recording store full"),  # MinIO with no room
    ("QuotaExceeded", 403, "recording store full"),
    ("NoSuchBucket", 404, "recording store has no such bucket"),
    ("SlowDown", 503, "recording store unavailable"),
    ("InvalidAccessKeyId", 403, "recording store refused access (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"),
])
def test_store_answers_become_short_reasons(code: str, status: int, reason: str) -> None:
    """What a full or refusing store answers (moto has no quotas to fill) becomes the reason history and the link
    give; the store's own message (which may quote the request) is never passed on."""
    from botocore.exceptions import ClientError

    answer: Any = {"Error": {"Code": code, "Message": f"signed with {SECRET}"},
                   "ResponseMetadata": {"HTTPStatusCode": status}}
    assert _reason(ClientError(answer, "PutObject")) == reason
