"""This node: its identity and the URL the other nodes forward to (the rows of ``cluster_nodes``)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from vpbx.settings import Settings

WILDCARDS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class Node:
    node_id: str  # unique per process start: a restarted node is a new node (its old leases simply expire)
    url: str


def this_node(settings: Settings) -> Node:
    return Node(f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", url_of(settings))


def url_of(settings: Settings) -> str:
    """``cluster_url``, else the address served (a wildcard is reachable at loopback only: several hosts set
    ``VPBX_CLUSTER_URL``)."""
    if settings.cluster_url:
        return settings.cluster_url.rstrip("/")
    scheme = "https" if settings.tls_cert else "http"
    host = "127.0.0.1" if settings.host in WILDCARDS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{settings.port}"
