"""A real HTTP server on 127.0.0.1 that answers from a script and records every request it received."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.http.support import ScriptedVendor, start_server


@pytest.fixture
def vendor() -> Iterator[ScriptedVendor]:
    scripted = ScriptedVendor()
    server = start_server(scripted)
    yield scripted
    server.shutdown()
    server.server_close()
