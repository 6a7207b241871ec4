"""The mini CRM (examples/mini_crm) served on a loopback port, connected to the vpbx plugin's domain."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from examples.mini_crm.app import Settings, create_app
from examples.mini_crm.store import Store
from tests.examples.support import MiniCrm, Served

from vpbx.testing.plugin import VpbxDomain


@pytest.fixture
def mini_crm(vpbx_domain: VpbxDomain) -> Iterator[MiniCrm]:
    """The mini CRM for ``vpbx_domain``: its integration points at the CRM's receiver (``/vpbx/``)."""
    store = Store()
    app = create_app(Settings(pbx_url=vpbx_domain.url, api_key=vpbx_domain.api_key,
                              crm_token=vpbx_domain.crm_token, keepalive=0.3), store)
    served = Served(app).start()
    vpbx_domain.set_crm(f"{served.url}/vpbx/")
    with httpx.Client(base_url=served.url, timeout=10) as http:
        yield MiniCrm(served.url, store, http)
    served.stop()
    store.close()
