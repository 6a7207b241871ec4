"""Generate ``_sync.py`` (``Client``) from ``_async.py`` (``AsyncClient``): the methods are written once.

Run ``python -m vpbx.client._unasync`` after editing ``_async.py``; a test fails while they differ.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
SOURCE = HERE / "_async.py"
TARGET = HERE / "_sync.py"

HEADER = '"""The synchronous client: GENERATED from ``_async.py`` by ``python -m vpbx.client._unasync``."""'
REPLACEMENTS: list[tuple[str, str]] = [
    (r"import asyncio\n", "import time\n"),
    (r"asyncio\.sleep", "time.sleep"),
    (r"for (\w+) in (.+):\n\s+yield \1\n", r"yield from \2\n"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"import Iterator, Iterable,", "import Iterable, Iterator,"),
    (r"\bAsyncBaseTransport\b", "BaseTransport"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncSim\b", "Sim"),
    (r"async def __aenter__", "def __enter__"),
    (r"async def __aexit__", "def __exit__"),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\baiter_lines\b", "iter_lines"),
    (r"\baiter_text\b", "iter_text"),
    (r"\basync (def|for|with) ", r"\1 "),
    (r"\bawait ", ""),
    (r"an ``async with`` block", "a ``with`` block"),
]


def generate(source: str) -> str:
    lines = source.splitlines(keepends=True)
    out = HEADER + "\n" + "".join(lines[1:])
    for pattern, replacement in REPLACEMENTS:
        out = re.sub(pattern, replacement, out)
    return out


def main() -> int:
    TARGET.write_text(generate(SOURCE.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
