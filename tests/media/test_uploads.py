"""002 §12.4 uploads: WAV, MP3 and Ogg decoded and converted once to 8 kHz mono 16-bit WAV; a file that does not
decode is a 400 in the documents' format and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.media.audio import encoded, tone_wav, wav_seconds

from vpbx.testing.server import ServerThread, Tenant

GOOD = tone_wav(1.0)
CORRUPT = {
    # A RIFF/WAVE header that claims a format chunk, then garbage.
    "broken.wav": b"RIFF\xff\xff\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xee" * 200,
    # A WAV cut inside its header.
    "cut.wav": GOOD[:30],
    # An ID3 tag and no MPEG frames.
    "tag-only.mp3": b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\x00" * 300,
    # An MP3 frame header followed by noise that is not MPEG.
    "noise.mp3": b"\xff\xfb\x90\x00" + bytes(range(256)) * 4,
    "broken.ogg": b"OggS\x00\x02" + b"\x13" * 500,
}


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/crmapi/v1/media-catalog/holdmusic", files={"file": (name, data, "application/octet-stream")})


def stored_files(server: ServerThread) -> list[Path]:
    root = Path(server.settings.home) / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_corrupt_upload_is_a_clear_400_and_nothing_is_stored(server: ServerThread, tenant: Tenant,
                                                                 name: str) -> None:
    before = stored_files(server)
    r = upload(tenant.client, name, CORRUPT[name])
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "Validation error"
    assert [e["field"] for e in body["errors"]] == ["file"]
    assert body["errors"][0]["message"]  # says what is wrong
    assert tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json() == []
    assert stored_files(server) == before


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg"])
def test_uploads_are_converted_once_to_8khz_mono_wav(server: ServerThread, tenant: Tenant, fmt: str) -> None:
    data = GOOD if fmt == "wav" else encoded(fmt, 1.0)
    r = upload(tenant.client, f"tone.{fmt}", data)
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"id", "name"} and r.json()["name"] == f"tone.{fmt}"  # the documented answer
    (path,) = [p for p in stored_files(server) if r.json()["id"] in p.name]
    assert path.suffix == ".wav"
    seconds, rate, channels, width = wav_seconds(path.read_bytes())
    assert (rate, channels, width) == (8000, 1, 2) and abs(seconds - 1.0) < 0.1
