"""The pages a newcomer opens: ``/`` links everything, ``/docs`` and ``/redoc`` load every asset from vpbx itself
(no CDN: they work without internet)."""

from __future__ import annotations

import re

import httpx
import pytest

from vpbx.testing.server import ServerThread

TIMEOUT = 60  # seconds: the machine may be loaded
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def references(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


def test_home_page_links_docs_openapi_health_metrics_and_console(server: ServerThread) -> None:
    r = httpx.get(server.url + "/", timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    links = references(r.text)
    for path in ("/docs", "/redoc", "/openapi.json", "/healthz", "/metrics", "/console"):
        assert path in links, path
    for path in ("/docs", "/redoc", "/openapi.json", "/healthz", "/metrics"):
        assert httpx.get(server.url + path, timeout=TIMEOUT).status_code == 200, path


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_every_asset_from_vpbx(server: ServerThread, page: str) -> None:
    r = httpx.get(server.url + page, timeout=TIMEOUT)
    assert r.status_code == 200
    refs = references(r.text)
    scripts = [u for u in refs if u.endswith(".js")]
    assert scripts, r.text  # the UI's bundle is there
    for url in refs:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        asset = httpx.get(server.url + url, timeout=TIMEOUT)
        assert asset.status_code == 200 and asset.content, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"] and len(asset.content) > 100_000, url
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url
    assert "cdn" not in r.text.lower() and "fonts.googleapis" not in r.text


def test_swagger_oauth2_redirect_is_served(server: ServerThread) -> None:
    assert httpx.get(server.url + "/docs/oauth2-redirect", timeout=TIMEOUT).status_code == 200
