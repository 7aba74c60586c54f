"""`riskengine serve` as a user runs it: a real uvicorn process on loopback, a key from `riskengine keys
create`, a lookup, and the audit entry written when the server stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import E_WIRE_WUCHANG, make_world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_riskengine_serve_answers_over_http_and_flushes_the_audit_log_on_shutdown(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    env = {**os.environ, "RISKENGINE_HOME": str(tmp_path), "RISKENGINE_STORE_PATH": str(world.store.path)}
    riskengine = str(Path(sys.executable).with_name("riskengine"))
    created = subprocess.run(
        [riskengine, "keys", "create", "--role", "inspector", "--district", "420106", "--name", "王五"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = created.stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        [riskengine, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.25)
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/enterprises/{E_WIRE_WUCHANG}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert response.json()["grade"] == "C"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    reads = world.store.audit().filter(action="read_grade")
    assert reads.select("key_name", "status").rows() == [("王五", 200)]


def test_serve_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_:  # the real entry point: bad usage is exit 2
        main(["serve", "--port", "70000"])
    assert exit_.value.code == 2
    assert "--port" in capsys.readouterr().err
