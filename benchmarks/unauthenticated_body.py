"""Claim (issue 12): a large request body sent without a valid key costs the server nothing — it is
refused (401) before the body is read — and an authenticated body over ``service.max_body_bytes`` is
refused (413) from its Content-Length.

Run:  python benchmarks/unauthenticated_body.py [--mb 200] [--enterprises 3000]
Starts `python -m riskengine serve` on loopback over a small synthesised store, then POSTs ``--mb``
megabytes to /v1/score with a well-formed but unknown key, and the same with a valid key. Prints one
JSON object: status, seconds to the answer and the server's RSS before and after each.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api_latency import rss_mb, synth_grades  # noqa: E402

from riskengine.core.keys import new_key  # noqa: E402
from riskengine.core.store import Store  # noqa: E402


def body(megabytes: int) -> Iterator[bytes]:
    chunk = b'{"features": [' + b" " * (1024 * 1024 - 14)
    yield chunk
    for _ in range(megabytes - 1):
        yield b" " * (1024 * 1024)


def post(base: str, megabytes: int, token: str, pid: int) -> dict[str, object]:
    before = rss_mb(pid)
    started = time.perf_counter()
    try:
        r = httpx.post(f"{base}/v1/score", content=body(megabytes), timeout=120,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                "Content-Length": str(megabytes * 1024 * 1024)})
        status: object = r.status_code
    except httpx.HTTPError as exc:  # the server may close the connection while the client still sends
        status = f"closed: {type(exc).__name__}"
    return {"status": status, "seconds": round(time.perf_counter() - started, 3),
            "server_rss_mb_before": round(before, 1), "server_rss_mb_after": round(rss_mb(pid), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--enterprises", type=int, default=3000)
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="riskengine-body-bench-"))
    store = Store(work / "riskengine.duckdb")
    store.save_grades(synth_grades(args.enterprises, args.enterprises // 10, 1))
    record, token = new_key("credit_office", name="benchmark")
    store.add_key(record)
    env = {**os.environ, "RISKENGINE_HOME": str(work), "RISKENGINE_STORE_PATH": str(store.path)}
    server = subprocess.Popen([sys.executable, "-m", "riskengine", "serve", "--port", str(args.port),
                               "--log-level", "warning"], env=env, cwd=work, stdout=subprocess.DEVNULL,
                              stderr=open(work / "server.log", "w"), start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    result: dict[str, object] = {"claim": "unauthenticated_body", "mb": args.mb}
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                sys.exit(f"unauthenticated_body: server exited; see {work / 'server.log'}")
            time.sleep(0.2)
        result["unauthenticated"] = post(base, args.mb, "rk_00000000_" + "x" * 43, server.pid)
        result["authenticated"] = post(base, args.mb, token, server.pid)
        result["load_average_1min"] = os.getloadavg()[0]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
