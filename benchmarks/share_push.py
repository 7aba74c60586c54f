"""`riskengine share` on a generated city: a flaky local platform, a push killed with SIGKILL, a rerun.

    python benchmarks/share_push.py [--enterprises 20000] [--seed 42] [--batch-size 500]

Generates and ingests a city, starts a credit-platform receiver on 127.0.0.1 (verifies the HMAC
signature, applies each idempotency key once, answers 503 to its first three requests and never
answers the third batch), runs `riskengine share` in a child process, kills it with SIGKILL once
the third batch was applied, runs it again, then a third time; and pushes the same lake to a
folder. Prints JSON: records in the lake, records applied by the platform (total and distinct),
requests, each run's wall time and exit status.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECRET = "benchmark-shared-key"


def platform() -> tuple[ThreadingHTTPServer, dict[str, Any]]:
    from riskengine.workflows.share import SIGNATURE_HEADER, verify

    state: dict[str, Any] = {
        "applied": [],
        "requests": 0,
        "keys": set(),
        "fail": 3,
        "hang_seq": 3,
        "hung": threading.Event(),
        "release": threading.Event(),
        "bad_signatures": 0,
    }
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                state["requests"] += 1
                if state["fail"] > 0:
                    state["fail"] -= 1
                    return self.answer(503)
            if not verify(SECRET.encode(), self.headers.get(SIGNATURE_HEADER, ""), body):
                with lock:
                    state["bad_signatures"] += 1
                return self.answer(401)
            key, seq = self.headers["Idempotency-Key"], int(self.headers["X-Riskengine-Batch"])
            with lock:
                new = key not in state["keys"]
                if new:
                    state["keys"].add(key)
                    state["applied"] += [json.loads(x) for x in body.decode().splitlines() if x]
            if new and seq == state["hang_seq"]:
                state["hung"].set()
                state["release"].wait(60)
            self.answer(200)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    from riskengine.lake.ingest import ingest
    from riskengine.lake.layout import load_tables
    from riskengine.synth import generate_city
    from riskengine.workflows.credit_record import share_records

    work = Path(tempfile.mkdtemp(prefix="riskengine-share-bench-"))
    generate_city(work / "city", n_enterprises=args.enterprises, seed=args.seed)
    ingest(work / "city", work / "lake")
    records = share_records(load_tables(work / "lake"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RISKENGINE_HOME": str(work),
        "RISKENGINE_SHARE__SECRET": SECRET,
        "RISKENGINE_SHARE__BATCH_SIZE": str(args.batch_size),
        "RISKENGINE_SHARE__BACKOFF_SECONDS": "0.2",
    }
    server, state = platform()
    url = f"http://127.0.0.1:{server.server_address[1]}/records"
    cmd = [sys.executable, "-m", "riskengine", "share", "--lake", str(work / "lake"), "--to", url]

    runs = []
    started = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    state["hung"].wait(300)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    runs.append(
        {
            "run": "killed with SIGKILL after batch 3 was applied",
            "exit": child.returncode,
            "seconds": round(time.perf_counter() - started, 2),
            "applied_so_far": len(state["applied"]),
        }
    )
    state["release"].set()
    state["hang_seq"] = None
    for name in ("rerun", "third run"):
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        runs.append(
            {
                "run": name,
                "exit": done.returncode,
                "seconds": round(time.perf_counter() - started, 2),
                "stderr": done.stderr.strip().splitlines()[-1:],
            }
        )
    started = time.perf_counter()
    folder = subprocess.run([*cmd[:-1], str(work / "exchange")], env=env, capture_output=True, text=True)
    folder_seconds = round(time.perf_counter() - started, 2)
    server.shutdown()
    keys = [(r["record_type"], r["record_id"]) for r in state["applied"]]
    print(
        json.dumps(
            {
                "enterprises": args.enterprises,
                "seed": args.seed,
                "batch_size": args.batch_size,
                "records_in_lake": records.height,
                "by_type": dict(records.group_by("record_type").len().sort("record_type").iter_rows()),
                "platform": {
                    "requests": state["requests"],
                    "applied": len(keys),
                    "distinct_applied": len(set(keys)),
                    "missing": records.height - len(set(keys)),
                    "bad_signatures": state["bad_signatures"],
                },
                "runs": runs,
                "folder_push": {
                    "exit": folder.returncode,
                    "seconds": folder_seconds,
                    "batch_files": len(list((work / "exchange").glob("batch-*.jsonl"))),
                },
                "work_dir": str(work),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
