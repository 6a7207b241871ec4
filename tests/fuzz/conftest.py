"""pytest 9.2 dropped ``Node._nodeid``, which schemathesis' pytest integration (4.32) reads and writes to name
each operation's subtest; give it back as a plain attribute over ``nodeid`` (reporting only)."""

from __future__ import annotations

from _pytest.nodes import Node


def _get(node: Node) -> str:
    return str(node.__dict__.get("_schemathesis_nodeid", node.nodeid))


def _set(node: Node, value: str) -> None:
    node.__dict__["_schemathesis_nodeid"] = value


if not hasattr(Node, "_nodeid"):
    Node._nodeid = property(_get, _set)  # type: ignore[attr-defined]
