"""The engine's virtual-clock server, for the records route tests."""

from tests.engine.conftest import vserver, vtenant  # noqa: F401
