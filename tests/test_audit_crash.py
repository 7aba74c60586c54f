"""kill -9 under load loses no audit row of an answered request: the server journals and syncs each
request's entry before answering, and the journal of a killed server is merged afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from riskengine.core.audit import merge_journal
from riskengine.core.store import Store
from tests.api_helpers import E_FOOD_WUCHANG, E_WIRE_WUCHANG, make_world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_under_load_loses_no_audit_row_of_an_answered_request(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    port = _free_port()
    env = {**os.environ, "RISKENGINE_HOME": str(tmp_path), "RISKENGINE_STORE_PATH": str(world.store.path)}
    server = subprocess.Popen([sys.executable, "-m", "riskengine", "serve", "--port", str(port),
                               "--log-level", "warning"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        answered: list[str] = []
        stop = threading.Event()

        def load(worker: int) -> None:
            with httpx.Client(base_url=base, headers=world.headers("inspector"), timeout=5) as client:
                for i in range(100_000):
                    if stop.is_set():
                        return
                    marker = f"{worker}-{i}"
                    eid = (E_WIRE_WUCHANG, E_FOOD_WUCHANG)[i % 2]
                    try:
                        r = client.get(f"/v1/enterprises/{eid}", params={"probe": marker})
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        answered.append(marker)

        workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for w in workers:
            w.start()
        while len(answered) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)  # mid-load: requests in flight, a merge perhaps half done
        server.wait(10)
        stop.set()
        for w in workers:
            w.join(10)
    finally:
        if server.poll() is None:
            server.kill()
    assert len(answered) >= 150
    store = Store(world.store.path)
    merge_journal(store)
    audited = {r.split("probe=", 1)[1] for r in store.audit()["resource"].to_list() if "probe=" in r}
    lost = [m for m in answered if m not in audited]
    assert lost == [], f"{len(lost)} of {len(answered)} answered requests have no audit row"


def test_write_mode_journals_without_flushing_to_disk(tmp_path: Path, monkeypatch: object) -> None:
    import riskengine.core.audit as audit_module
    from riskengine.core.audit import AuditWriter, journalled_entries, make_entry

    flushes: list[int] = []
    real = audit_module.os.fdatasync
    monkeypatch.setattr(audit_module.os, "fdatasync", lambda fd: flushes.append(fd) or real(fd))  # type: ignore[attr-defined]
    store = Store(tmp_path / "s.duckdb")
    done = threading.Event()
    writer = AuditWriter(store, flush_seconds=3600, sync=False)
    writer.record(make_entry("read_grade", status=200, key_id="k1"), on_durable=lambda error: done.set())
    assert done.wait(5) and flushes == []
    assert journalled_entries(store)["key_id"].to_list() == ["k1"]  # in the journal before the answer
    writer.close()
