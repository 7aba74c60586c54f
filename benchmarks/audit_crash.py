"""Claim (issue 12): `kill -9` of a loaded server loses no audit row of an answered request.

Run:  python benchmarks/audit_crash.py [--enterprises 20000] [--clients 8] [--seconds 5] [--crashes 3]
Each round starts `python -m riskengine serve` over a synthesised store, has ``--clients`` threads
send grade lookups as fast as they are answered (each with a unique ``?probe=`` marker), kills the
server with SIGKILL after ``--seconds``, then exports the audit log with `python -m riskengine audit`
(a fresh process, as an officer would) and counts answered requests without an audit row. Run it
with PYTHONPATH pointing at another checkout to measure that version. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from api_latency import synth_grades  # noqa: E402

from riskengine.core.keys import new_key  # noqa: E402
from riskengine.core.store import Store  # noqa: E402


def one_crash(work: Path, token: str, ids: list[str], args: argparse.Namespace) -> dict[str, object]:
    env = {**os.environ, "RISKENGINE_HOME": str(work),
           "RISKENGINE_STORE_PATH": str(work / "riskengine.duckdb")}
    server = subprocess.Popen([sys.executable, "-m", "riskengine", "serve", "--port", str(args.port),
                               "--log-level", "warning"], env=env, cwd=work, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    answered: list[str] = []
    stop = threading.Event()
    tag = str(time.time_ns())

    def load(worker: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=5) as c:
            i = 0
            while not stop.is_set():
                marker = f"{tag}-{worker}-{i}"
                try:
                    eid = ids[(worker * 7919 + i) % len(ids)]
                    r = c.get(f"/v1/enterprises/{eid}", params={"probe": marker})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    answered.append(marker)
                i += 1

    threads = [threading.Thread(target=load, args=(w,)) for w in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    stop.set()
    for t in threads:
        t.join()
    out = work / f"audit-{tag}.csv"
    subprocess.run([sys.executable, "-m", "riskengine", "audit", "--since", "2000-01-01", "--out", str(out)],
                   env=env, cwd=work, check=True, capture_output=True)
    resources = pl.read_csv(out, infer_schema=False)["resource"].to_list()
    audited = {r.split("probe=", 1)[1] for r in resources if r and "probe=" in r}
    lost = sum(m not in audited for m in answered)
    return {"answered": len(answered), "lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--crashes", type=int, default=3)
    parser.add_argument("--port", type=int, default=8773)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="riskengine-crash-bench-"))
    store = Store(work / "riskengine.duckdb")
    grades = synth_grades(args.enterprises, args.enterprises // 10, 1)
    store.save_grades(grades)
    record, token = new_key("credit_office", name="benchmark")
    store.add_key(record)
    ids = grades["enterprise_id"].to_list()
    rounds = [one_crash(work, token, ids, args) for _ in range(args.crashes)]
    print(json.dumps({"claim": "audit_crash", "enterprises": args.enterprises, "clients": args.clients,
                      "seconds_before_kill": args.seconds, "rounds": rounds,
                      "lost_per_crash": [r["lost"] for r in rounds],
                      "load_average_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
