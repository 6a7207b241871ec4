"""Helpers of the cabinet tests: employees with passwords, signing in over HTTP and in the browser, screenshots."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vpbx.testing.server import ServerThread, Tenant

SHOTS = Path(__file__).parent / "screenshots"  # gitignored: the pages as the tests left them
PASSWORD = "Secret-pass-1"


@dataclass
class Person:
    login: str  # login@domain, as typed into the sign-in form
    password: str


def set_password(tenant: Tenant, login: str, password: str = PASSWORD) -> Person:
    """Through the REST API (6.4), as an operator would."""
    answer = tenant.client.put(f"/crmapi/v1/users/{login}", json={"password": password})
    assert answer.status_code == 200, answer.text
    return Person(f"{login}@{tenant.name}", password)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found[1]


def sign_in(server: ServerThread, person: Person) -> httpx.Client:
    """An HTTP client signed in through the form, as a browser does (cookies kept)."""
    client = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    form = client.get("/console/signin")
    answer = client.post("/console/signin", data={"login": person.login, "password": person.password,
                                                  "csrf": csrf_of(form.text)})
    assert answer.status_code == 303, answer.text
    return client


def browser_sign_in(page: Any, server: ServerThread, person: Person) -> None:
    page.goto(server.url + "/console/signin")
    page.get_by_label("Логин").fill(person.login)
    page.get_by_label("Пароль").fill(person.password)
    page.get_by_role("button", name="Войти").click()
    page.wait_for_url(re.compile(r".*/console/$"))


def screenshots(page: Any, name: str) -> None:
    """The page at 1280×800 and at 360×740 (a phone)."""
    SHOTS.mkdir(exist_ok=True)
    size = page.viewport_size
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    page.screenshot(path=str(SHOTS / f"{name}-360.png"), full_page=True)
    page.set_viewport_size(size)


class Crm:
    """A CRM on 127.0.0.1 (stdlib HTTP server in a thread): records every request's body; ``status`` is what it
    answers."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.bodies: list[bytes] = []
        self.status = 200
        crm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                crm.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                payload = b'{"contact_name": "Test", "responsible": ""}'
                self.send_response(crm.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/crm"

    def received(self, *needles: bytes) -> list[bytes]:
        return [b for b in list(self.bodies) if all(n in b for n in needles)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition: Any, timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy (the tests wait on conditions, not on time)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def audio_duration(page: Any, selector: str) -> float:
    """Load the <audio> element as a person pressing play would and wait for its duration (seconds) to be known."""
    audio = page.locator(selector).first
    audio.evaluate("a => { a.preload = 'auto'; a.load(); }")
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0 && isFinite(a.duration)",
                           arg=audio.element_handle(), timeout=20_000)
    return float(audio.evaluate("a => a.duration"))


AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core, vendored with its licence (MPL-2.0)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return list(found)
