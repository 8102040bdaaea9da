"""A real console per test (uvicorn on a free port, its own state directory)."""

import pytest


@pytest.fixture
def console(tmp_path, monkeypatch):
    from console_support import ConsoleServer

    monkeypatch.chdir(tmp_path)
    server = ConsoleServer(tmp_path / "state")
    yield server
    server.stop()
