"""Persistence: tables, repositories and migrations."""

# Every process that writes (the server, the CLI, scripts) marks its configuration commits for the others.
from vpbx.store import changes as _changes  # noqa: F401
