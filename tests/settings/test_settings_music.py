"""002 §12.2-12.4: music on ringback and hold, the media catalogue and vpbx's upload."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tests.media.audio import encoded, mp3_without_id3, tone_wav, wav_seconds
from typer.testing import CliRunner

from vpbx.cli import app as cli_app
from vpbx.testing.server import ServerThread, Tenant

# Real audio (uploads are decoded and converted on upload, so headers alone are refused).
WAV = tone_wav(0.5)
MP3 = encoded("mp3", 0.5)
MP3_FRAME = mp3_without_id3(MP3)
OGG = encoded("ogg", 0.5)
FILE_ID = re.compile(r"^[0-9a-f-]{36}_[0-9a-f-]{36}$")


def errors(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Validation error"
    return [e["field"] for e in r.json()["errors"]]


def upload(client: httpx.Client, type_: str, filename: str, data: bytes, **form: str) -> httpx.Response:
    return client.post(f"/crmapi/v1/media-catalog/{type_}", files={"file": (filename, data, "audio/mpeg")}, data=form)


def test_defaults(tenant: Tenant) -> None:
    r = tenant.client.get("/crmapi/v1/music")
    assert r.status_code == 200
    assert r.json() == {
        "ringback": {"file": "ringback", "name": "Гудки", "uploaded": False},
        "holdmusic": {"file": "holdmusic", "name": "Утренняя волна", "uploaded": False},
    }
    assert tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json() == []
    assert tenant.client.get("/crmapi/v1/media-catalog/ringback").json() == []


def test_seed_example(tenant: Tenant, server: ServerThread, run: Callable[..., Any]) -> None:
    r1 = upload(tenant.client, "holdmusic", "Music_1.mp3", MP3)
    r2 = upload(tenant.client, "holdmusic", "Music_2.mp3", MP3_FRAME)
    assert r1.status_code == r2.status_code == 201, r1.text
    id1, id2 = r1.json()["id"], r2.json()["id"]
    assert FILE_ID.match(id1) and id1 != id2
    assert r1.json() == {"id": id1, "name": "Music_1.mp3"}
    # 12.4 example
    assert tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json() == [
        {"id": id1, "name": "Music_1.mp3"}, {"id": id2, "name": "Music_2.mp3"}]
    assert tenant.client.get("/crmapi/v1/media-catalog/ringback").json() == []
    # 12.3 example request, then 12.2 example answer
    assert tenant.client.post("/crmapi/v1/music/holdmusic", json={"file": id1}).status_code == 204
    assert tenant.client.post("/crmapi/v1/music/ringback", json={"file": "holdmusic"}).status_code == 204
    assert tenant.client.get("/crmapi/v1/music").json() == {
        "ringback": {"file": "holdmusic", "name": "Утренняя волна", "uploaded": False},
        "holdmusic": {"file": id1, "name": "Music_1.mp3", "uploaded": True},
    }

    async def domain_id(_: Any, d: int) -> int:
        return d

    # Converted once on upload to what the media path plays: 8 kHz mono 16-bit WAV, as long as the upload.
    stored = Path(server.settings.home) / "media" / str(run(domain_id)) / f"{id1}.wav"
    seconds, rate, channels, width = wav_seconds(stored.read_bytes())
    assert (rate, channels, width) == (8000, 1, 2) and abs(seconds - 0.5) < 0.1


def test_formats_and_names(tenant: Tenant) -> None:
    for name, data in (("a.wav", WAV), ("b.ogg", OGG), ("c.mp3", MP3_FRAME)):
        r = upload(tenant.client, "ringback", name, data)
        assert r.status_code == 201, r.text
    r = upload(tenant.client, "ringback", "C:\\music\\x.wav", WAV, name="Приветствие")
    assert r.json()["name"] == "Приветствие"
    r = upload(tenant.client, "ringback", "C:\\music\\path.wav", WAV)
    assert r.json()["name"] == "path.wav"
    names = [f["name"] for f in tenant.client.get("/crmapi/v1/media-catalog/ringback").json()]
    assert names == ["a.wav", "b.ogg", "c.mp3", "Приветствие", "path.wav"]


def test_set_by_name(tenant: Tenant) -> None:
    upload(tenant.client, "ringback", "Мелодия.ogg", OGG)
    assert tenant.client.post("/crmapi/v1/music/ringback", json={"file": "Мелодия.ogg"}).status_code == 204
    assert tenant.client.get("/crmapi/v1/music").json()["ringback"]["name"] == "Мелодия.ogg"
    assert tenant.client.post("/crmapi/v1/music/holdmusic", json={"file": "Гудки"}).status_code == 204
    assert tenant.client.get("/crmapi/v1/music").json()["holdmusic"] == {
        "file": "ringback", "name": "Гудки", "uploaded": False}
    # Two uploads of one name: the id is needed.
    upload(tenant.client, "ringback", "Мелодия.ogg", OGG)
    assert errors(tenant.client.post("/crmapi/v1/music/ringback", json={"file": "Мелодия.ogg"})) == ["file"]


def test_set_validation(tenant: Tenant, other_tenant: Tenant) -> None:
    assert errors(tenant.client.post("/crmapi/v1/music/ringback", json={"file": "nope"})) == ["file"]
    assert errors(tenant.client.post("/crmapi/v1/music/ringback", json={})) == ["file"]
    assert errors(tenant.client.post("/crmapi/v1/music/ringback", json={"file": ""})) == ["file"]
    assert errors(tenant.client.post("/crmapi/v1/music/greeting", json={"file": "holdmusic"})) == ["type"]
    assert errors(tenant.client.get("/crmapi/v1/media-catalog/greeting")) == ["type"]
    theirs = upload(other_tenant.client, "holdmusic", "x.mp3", MP3).json()["id"]
    assert errors(tenant.client.post("/crmapi/v1/music/holdmusic", json={"file": theirs})) == ["file"]
    assert tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json() == []
    assert tenant.client.delete(f"/crmapi/v1/media-catalog/holdmusic/{theirs}").status_code == 404


def test_upload_validation(tenant: Tenant) -> None:
    assert errors(upload(tenant.client, "holdmusic", "x.mp3", b"not audio at all")) == ["file"]
    assert errors(upload(tenant.client, "holdmusic", "x.mp3", b"")) == ["file"]
    assert errors(upload(tenant.client, "holdmusic", "x.txt", b"RIFF\x00\x00\x00\x00AVI LIST")) == ["file"]
    assert errors(upload(tenant.client, "greeting", "x.mp3", MP3)) == ["type"]
    assert errors(tenant.client.post("/crmapi/v1/media-catalog/holdmusic", data={"name": "x"})) == ["file"]
    assert tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json() == []


def test_upload_size(tenant: Tenant) -> None:
    # Above the API's 1 MiB body limit, within the upload's 10 MiB.
    big = MP3 + b"\x00" * (3 * 1024 * 1024)
    r = upload(tenant.client, "holdmusic", "big.mp3", big)
    assert r.status_code == 201, r.text
    exactly = MP3 + b"\x00" * (10 * 1024 * 1024 - len(MP3))
    assert upload(tenant.client, "holdmusic", "max.mp3", exactly).status_code == 201
    r = upload(tenant.client, "holdmusic", "huge.mp3", exactly + b"\x00")
    assert r.status_code == 413 and r.json() == {"message": "Request entity too large"}
    r = upload(tenant.client, "holdmusic", "huge.mp3", exactly + b"\x00" * 1024 * 1024)
    assert r.status_code == 413
    # Other routes keep the general limit.
    r = tenant.client.post("/crmapi/v1/blf/users", content=b"[" + b" " * (2 * 1024 * 1024) + b"]",
                           headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert len(tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json()) == 2


def test_delete_upload_falls_back(tenant: Tenant, server: ServerThread) -> None:
    file_id = upload(tenant.client, "holdmusic", "x.wav", WAV).json()["id"]
    tenant.client.post("/crmapi/v1/music/holdmusic", json={"file": file_id})
    tenant.client.post("/crmapi/v1/music/ringback", json={"file": file_id})
    files = list((Path(server.settings.home) / "media").rglob(f"{file_id}.wav"))
    assert len(files) == 1
    assert tenant.client.delete(f"/crmapi/v1/media-catalog/ringback/{file_id}").status_code == 404  # wrong type
    assert tenant.client.delete(f"/crmapi/v1/media-catalog/holdmusic/{file_id}").status_code == 204
    assert not files[0].exists()
    assert tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json() == []
    assert tenant.client.get("/crmapi/v1/music").json() == {
        "ringback": {"file": "ringback", "name": "Гудки", "uploaded": False},
        "holdmusic": {"file": "holdmusic", "name": "Утренняя волна", "uploaded": False},
    }


def test_rights(tenant: Tenant, client_with: Callable[..., httpx.Client]) -> None:
    reader = client_with("more.get")
    assert reader.get("/crmapi/v1/music").status_code == 200
    assert reader.get("/crmapi/v1/media-catalog/holdmusic").status_code == 200
    assert reader.post("/crmapi/v1/music/ringback", json={"file": "holdmusic"}).status_code == 403
    assert upload(reader, "holdmusic", "x.mp3", MP3).status_code == 403
    editor = client_with("more.edit")
    assert editor.get("/crmapi/v1/music").status_code == 403
    file_id = upload(editor, "holdmusic", "x.mp3", MP3).json()["id"]
    assert editor.post("/crmapi/v1/music/ringback", json={"file": "holdmusic"}).status_code == 204
    assert editor.delete(f"/crmapi/v1/media-catalog/holdmusic/{file_id}").status_code == 403
    nobody = client_with("users.get")
    assert nobody.get("/crmapi/v1/music").status_code == 403
    assert nobody.get("/crmapi/v1/music").json() == {"message": "Don't have permission to access"}


def test_cli_media_add(tenant: Tenant, server: ServerThread, tmp_path: Path) -> None:
    song = tmp_path / "Song.ogg"
    song.write_bytes(OGG)
    common = ["--db", server.settings.db_url, "--home", str(server.settings.home)]
    result = CliRunner().invoke(cli_app, ["media", "add", "--domain", tenant.name, "--type", "ringback", str(song),
                                          *common])
    assert result.exit_code == 0, result.output
    file_id = result.output.strip()
    assert tenant.client.get("/crmapi/v1/media-catalog/ringback").json() == [{"id": file_id, "name": "Song.ogg"}]
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"hello")
    result = CliRunner().invoke(cli_app, ["media", "add", "--domain", tenant.name, "--type", "ringback", str(bad),
                                          *common])
    assert result.exit_code == 1
    result = CliRunner().invoke(cli_app, ["media", "list", "--domain", tenant.name, "--type", "ringback", *common])
    assert result.exit_code == 0 and "Song.ogg" in result.output
