"""A tiny credit history as a lake, and a local credit-platform receiver on 127.0.0.1 for the share tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl

from riskengine.core.ids import uscc_check_char
from riskengine.lake.ingest import ingest
from riskengine.workflows.share import SIGNATURE_HEADER, verify

SECRET = "test-shared-key-0123456789"


def uscc(n: int, district: str = "420106") -> str:
    first17 = f"91{district}MA4R{n:05d}"
    return first17 + uscc_check_char(first17)


def write_source(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        pl.DataFrame(rows).write_csv(folder / f"{name}.csv")
    return folder


def enterprises(n: int, names: dict[int, str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "enterprise_id": uscc(i),
            "name": (names or {}).get(i, f"武汉测试{i}有限公司"),
            "district": "420106",
            "sector": "retail",
            "established_on": "2015-01-01",
            "status": "active",
        }
        for i in range(1, n + 1)
    ]


def penalty(
    case: str, ent: int, decided_on: str, severity: str, fine: float | None = 5000.0
) -> dict[str, Any]:
    return {
        "case_id": case,
        "enterprise_id": uscc(ent),
        "decided_on": decided_on,
        "severity": severity,
        "fine_cny": fine,
        "category": "产品质量",
        "dishonest_list": False,
    }


def make_lake(tmp: Path, n_penalties: int = 12, **extra: list[dict[str, Any]]) -> Path:
    """Six enterprises, ``n_penalties`` penalties, plus any extra tables; ingested as of 2026-01-01."""
    pens = [
        penalty(f"P{i:03d}", 1 + i % 6, f"2024-{1 + i % 12:02d}-10", ("minor", "moderate", "serious")[i % 3])
        for i in range(n_penalties)
    ]
    tables = {"enterprises": enterprises(6), **({"penalties": pens} if pens else {}), **extra}
    src = write_source(tmp / "src", tables)
    lake = tmp / "lake"
    ingest(src, lake)
    return lake


def add_rows(lake: Path, tmp: Path, name: str, **tables: list[dict[str, Any]]) -> None:
    """Ingest more rows into the lake (a later delivery from the bureau)."""
    ingest(write_source(tmp / name, {"enterprises": enterprises(6), **tables}), lake)


@dataclass
class Receiver:
    """A credit platform: verifies the signature, applies each idempotency key once, fails on demand."""

    url: str = ""
    applied: list[dict[str, Any]] = field(default_factory=list)  # every line applied
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request seen
    keys: set[str] = field(default_factory=set)
    fail_next: int = 0  # answer 503 to this many requests
    status_for_all: int | None = None  # answer this to every request (e.g. 400)
    hang_on_seq: int | None = None  # apply this batch, then hold the answer until released
    applied_hang: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_keys(self) -> list[tuple[str, str]]:
        return [(r["record_type"], r["record_id"]) for r in self.applied]


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client went away (killed)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            key = self.headers.get("Idempotency-Key", "")
            seq = int(self.headers.get("X-Riskengine-Batch", "0"))
            with state.lock:
                state.requests.append({"key": key, "seq": seq})
                if state.status_for_all is not None:
                    return self._answer(state.status_for_all, {"error": "rejected"})
                if state.fail_next > 0:
                    state.fail_next -= 1
                    return self._answer(503, {"error": "busy"})
            if not verify(SECRET.encode(), self.headers.get(SIGNATURE_HEADER, ""), body):
                return self._answer(401, {"error": "bad signature"})
            with state.lock:
                duplicate = key in state.keys
                if not duplicate:
                    state.keys.add(key)
                    state.applied += [json.loads(line) for line in body.decode().splitlines() if line]
            if seq == state.hang_on_seq and not duplicate:
                state.applied_hang.set()
                state.release.wait(30)
            self._answer(200, {"duplicate": duplicate})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/credit/records"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
