"""``python -m examples.mini_crm``: serve the mini CRM (see README.md here for the PBX's side).

Environment:
  VPBX_URL          the PBX (default http://127.0.0.1:8080, ``make run``'s demo server)
  VPBX_API_KEY      the domain's X-API-KEY (default: the demo domain's, from ./.vpbx/demo-credentials.json)
  MINI_CRM_TOKEN    the crm_token set in the domain's integration (default mini-crm-token)
  MINI_CRM_HOST     where to listen (default 127.0.0.1)
  MINI_CRM_PORT     (default 8090)
  MINI_CRM_DB       SQLite file of contacts and calls (default :memory:, seeded at each start)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .app import Server, Settings, create_app

DEMO_CREDENTIALS = Path(".vpbx") / "demo-credentials.json"


def api_key() -> str:
    if key := os.environ.get("VPBX_API_KEY"):
        return key
    try:
        return str(json.loads(DEMO_CREDENTIALS.read_text())["api_key"])
    except (OSError, ValueError, KeyError):
        sys.exit(f"Set VPBX_API_KEY (no {DEMO_CREDENTIALS} here: run `make run` in this folder first)")


def main() -> None:
    settings = Settings(pbx_url=os.environ.get("VPBX_URL", "http://127.0.0.1:8080"), api_key=api_key(),
                        crm_token=os.environ.get("MINI_CRM_TOKEN", "mini-crm-token"),
                        db=os.environ.get("MINI_CRM_DB", ":memory:"))
    host = os.environ.get("MINI_CRM_HOST", "127.0.0.1")
    port = int(os.environ.get("MINI_CRM_PORT", "8090"))
    print(f"Mini CRM on http://{host}:{port}/ — the PBX's CRM URL: http://{host}:{port}/vpbx/", flush=True)
    app = create_app(settings)
    Server(app, host=host, port=port).run()


if __name__ == "__main__":
    main()
