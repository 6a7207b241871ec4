"""The cyclic garbage collector, tuned for a long-running PBX.

A server holds many small, long-lived objects (modules, table metadata, routes, cached configuration, the
live and recently ended calls); with CPython's default thresholds (700, 10, 10) the collector rescans them a
few hundred allocations apart, and the call engine spends a third of its time there (bench/engine.py). What
exists once the server is built is frozen out of collection, and young objects are collected less often.
Reference counting still frees everything at once; only cycles wait a little longer.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 10)


def tune() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
