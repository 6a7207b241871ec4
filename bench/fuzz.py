"""Schemathesis over every operation of the OpenAPI document, at length: 50,000 cases or more per backend.

The same test as ``make test`` runs (tests/fuzz/test_fuzz.py: a real server on loopback, positive and negative
data, checks not_a_server_error, status_code_conformance, response_schema_conformance and
content_type_conformance), with more cases per operation. Prints the figures and exits non-zero on any failure.

    .venv/bin/python bench/fuzz.py [--cases 50000] [--backend sqlite|postgres|both]
    make fuzz

PostgreSQL: the one the tests use (``VPBX_TEST_PG_URL``, else the local server, see tests/conftest.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/fuzz/test_fuzz.py::test_every_operation"
# Operations with few inputs (no parameters, no body) exhaust their cases early: ask every operation for more.
HEADROOM = 1.35


def operations() -> int:
    """How many operations the document has (the server's app, built without serving)."""
    from vpbx.app import create_app
    from vpbx.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        app = create_app(Settings(db=f"sqlite+aiosqlite:///{home}/count.db", home=Path(home), demo=False))
        return sum(len(ops) for ops in app.openapi()["paths"].values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000, help="at least this many cases per backend")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    args = parser.parse_args()
    count = operations()
    per_operation = int(args.cases / count * HEADROOM) + 1
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.jsonl"
        env = {**os.environ, "VPBX_FUZZ_EXAMPLES": str(per_operation), "VPBX_FUZZ_MIN_CASES": str(args.cases),
               "VPBX_FUZZ_REPORT": str(report)}
        selector = {"sqlite": "sqlite", "postgres": "postgres", "both": "sqlite or postgres"}[args.backend]
        print(f"{count} operations, up to {per_operation} cases each, backend {args.backend}", flush=True)
        began = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", TEST,
                                "-k", selector], cwd=ROOT, env=env)
        seconds = time.perf_counter() - began
        runs = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    for run in runs:
        statuses = {int(k): v for k, v in run["statuses"].items()}
        server_errors = sum(v for k, v in statuses.items() if k >= 500)
        print(f"{run['backend']}: {run['cases']} cases over {run['operations']} of {run['documented']} operations; "
              f"5xx: {server_errors}; answers by status: {dict(sorted(statuses.items()))}")
    print(f"{seconds:.0f} s; pytest exit code {code} (0: no 5xx, no undocumented status, no schema or content-type "
          "violation)")
    return code


if __name__ == "__main__":
    sys.exit(main())
