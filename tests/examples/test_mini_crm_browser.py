"""The mini CRM in a real browser (Debian's chromium through Playwright): click-to-call rings the employee,
and an incoming call pops its card into the open page over server-sent events."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.examples.support import MiniCrm, ringing

from vpbx.testing.plugin import VpbxSim

CHROMIUM = os.environ.get("VPBX_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"no chromium at {CHROMIUM} (make system-deps installs it)")


@pytest.fixture
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the test extra)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(5000)
            yield tab
        finally:
            browser.close()


def test_click_to_call_and_the_incoming_card_in_a_browser(mini_crm: MiniCrm, vpbx_sim: VpbxSim, page: Any) -> None:
    # (``page`` comes last: the browser closes before the CRM stops)
    from playwright.sync_api import expect

    page.goto(mini_crm.url)
    contact = mini_crm.contact("79101234567")  # ООО Ромашка, responsible ivan: preselected in its row
    row = page.locator(f"#contact-{contact.id}")
    expect(row.get_by_label("employee")).to_have_value("ivan")
    row.get_by_role("button", name="Call").click()

    expect(page.locator("#notice")).to_contain_text("Calling ООО Ромашка (79101234567)")
    callid = re.search(r"call ([0-9a-f]{32})", page.locator("#notice").inner_text())
    assert callid is not None
    call = vpbx_sim.call(callid[1])
    assert (call["kind"], call["to"], ringing(call)) == ("outgoing", "79101234567", ["ivan"])

    expect(page.locator("body")).to_have_attribute("data-live", "on")  # the page's event stream is open
    incoming = vpbx_sim.place("79101234567")
    card = page.locator(f"#card-{incoming['callid']}-admin")
    expect(card).to_be_visible()
    expect(card.locator(".phone")).to_have_text("79101234567")
    expect(card.locator(".contact")).to_have_text("ООО Ромашка")
    expect(card.locator(".employee")).to_have_text("admin (701)")

    vpbx_sim.hangup(incoming["callid"])  # the caller gives up: the card goes away
    expect(card).to_have_count(0)
