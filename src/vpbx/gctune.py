"""The cyclic garbage collector, tuned for a long-running PBX.

A server holds many small, long-lived objects (modules, table metadata, routes, cached configuration, the
live and recently ended calls); with CPython's default thresholds (700, 10, 10) the collector rescans them a
few hundred allocations apart, and the call engine spends a third of its time there (bench/engine.py). What
exists once the server is built is frozen out of collection, and young objects are collected less often.
Reference counting still frees everything at once; only cycles wait a little longer.

While the server is built (``building``: the imports and the app, ~240k objects that live as long as the
process) the collector is off: collecting them as they come took ~0.15 s of CPU, a seventh of the start. The
few cycles those imports leave as garbage (~1,000 objects, measured) are frozen with the rest rather than
collected: a full collection over everything would cost another ~80 ms of every start.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (10_000, 10, 10)


def tune() -> None:
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextmanager
def building() -> Iterator[None]:
    """No collection while the block builds the server; then what it built is frozen (``tune``)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    tune()
