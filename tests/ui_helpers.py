"""A small served world for the page tests: the API tests' store (four enterprises, two as_of dates,
one key per role) plus an enterprise with a hostile name, a plan shaped like the planner's, and a
tiny lake with inspections and penalties for the enterprise pages' timeline."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import uvicorn

from api.main import create_app
from riskengine.core.config import ServiceSettings, Settings, UiSettings
from riskengine.core.contract import PLAN_SCHEMA
from riskengine.core.store import GRADES_SCHEMA, Store
from riskengine.lake.ingest import ingest
from riskengine.workflows.monitor import latest_path
from tests.api_helpers import (
    AS_OF,
    E_FOOD_WUCHANG,
    E_RETAIL_JIANGAN,
    E_WIRE_JIANGAN,
    E_WIRE_WUCHANG,
    JIANGAN,
    PERIOD,
    WUCHANG,
    World,
    _template,
    make_service,
    uscc,
)

HOSTILE_NAME = "<script>alert(1)</script>"
E_HOSTILE = uscc(66)  # Wuchang, wire_cable, graded C
PLAN_ORDER = [E_FOOD_WUCHANG, E_HOSTILE, E_WIRE_WUCHANG, E_WIRE_JIANGAN, E_RETAIL_JIANGAN]


def hostile_grades() -> pl.DataFrame:
    row = {
        "enterprise_id": E_HOSTILE, "as_of": AS_OF, "name": HOSTILE_NAME, "district": WUCHANG,
        "sector": "wire_cable", "probability": 0.7, "score": 700, "grade": "C", "model_grade": "C",
        "rule": None, "model_version": "1",
        "reasons": [{"code": "inspections", "contribution": 0.9,
                     "text_zh": "<b>近365天检查不合格1次</b>", "text_en": "<b>1 failed inspection</b>"},
                    {"code": "baseline", "contribution": -0.2, "text_zh": "同类企业基准（电线电缆）",
                     "text_en": "baseline of similar enterprises (wires and cables)"}],
    }
    return pl.DataFrame([row], schema=GRADES_SCHEMA)


def plan_rows(grades: pl.DataFrame) -> pl.DataFrame:
    """Plan rows as the planner writes them (PLAN_SCHEMA): one mandatory and random rows per district,
    one over capacity."""
    by_id = {r["enterprise_id"]: r for r in grades.filter(pl.col("as_of") == AS_OF).iter_rows(named=True)}
    rows, rank = [], {WUCHANG: 0, JIANGAN: 0}
    for eid in PLAN_ORDER:
        g = by_id[eid]
        rank[g["district"]] += 1
        mandatory = g["grade"] == "D"
        rows.append({
            "district": g["district"], "district_name": "武昌区" if g["district"] == WUCHANG else "江岸区",
            "rank": rank[g["district"]], "enterprise_id": eid, "name": g["name"], "sector": g["sector"],
            "grade": g["grade"], "score": g["score"], "stratum": "mandatory" if mandatory else "random",
            "why": "列入严重违法失信名单 / on the dishonest list" if mandatory else
                   f"双随机抽取（{g['grade']}级） / random draw, stratum {g['grade']}",
            # As supervision.plan joins them: 中文（English）；…
            "top_reasons": "；".join(f"{r['text_zh']}（{r['text_en']}）" for r in g["reasons"][:3]),
            "inspector": "P1", "due_on": date(2025, 7, 31),
            "status": "over_capacity" if eid == E_RETAIL_JIANGAN else "scheduled",
            "inclusion_probability": 1.0 if mandatory else 0.25,
        })
    return pl.DataFrame(rows, schema=PLAN_SCHEMA)


def write_lake(folder: Path) -> Path:
    """A lake with the world's enterprises, a few inspections and a penalty."""
    source = folder / "source"
    source.mkdir(parents=True)
    ids = [E_WIRE_WUCHANG, E_WIRE_JIANGAN, E_FOOD_WUCHANG, E_RETAIL_JIANGAN, E_HOSTILE]
    pl.DataFrame({
        "enterprise_id": ids, "name": [f"企业{i}" for i in range(len(ids))],
        "district": [WUCHANG, JIANGAN, WUCHANG, JIANGAN, WUCHANG],
        "sector": ["wire_cable", "wire_cable", "food_related", "retail", "wire_cable"],
        "status": ["active"] * len(ids), "established_on": ["2015-01-01"] * len(ids),
    }).write_csv(source / "enterprises.csv")
    pl.DataFrame({
        "inspection_id": ["I1", "I2", "I3", "I4"],
        "enterprise_id": [E_WIRE_WUCHANG, E_WIRE_WUCHANG, E_FOOD_WUCHANG, E_HOSTILE],
        "inspected_on": ["2024-03-05", "2025-02-11", "2025-03-01", "2025-03-10"],
        "kind": ["random", "follow_up", "random", "random"],
        "outcome": ["fail", "pass", "conditional", "fail"], "findings_critical": [1, 0, 0, 0],
    }).write_csv(source / "inspections.csv")
    pl.DataFrame({
        "case_id": ["P1"], "enterprise_id": [E_WIRE_WUCHANG], "decided_on": ["2024-04-20"],
        "severity": ["moderate"], "fine_cny": [50000.0], "dishonest_list": [False],
    }).write_csv(source / "penalties.csv")
    lake = folder / "lake"
    ingest(source, lake, ingest_day=date(2025, 6, 30))
    return lake


@dataclass
class UiWorld(World):
    lake: Path | None = None


@functools.cache
def _lake() -> Path:
    """Ingested once per test process; read-only for the tests."""
    folder = Path(tempfile.mkdtemp(prefix="riskengine-ui-lake-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_lake(folder)


@functools.cache
def _ui_store() -> Path:
    """The page tests' store, built once per test process (tests get copies)."""
    template = _template()
    folder = Path(tempfile.mkdtemp(prefix="riskengine-ui-store-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    settings = Settings(home=folder)
    settings.store_file.write_bytes(template.store.path.read_bytes())
    store = Store(settings.store_file, lock_timeout=5)
    grades = pl.concat([store.latest_grades(AS_OF), hostile_grades()])
    store.save_grades(grades)
    store.save_plan(plan_rows(grades), {"period": PERIOD, "as_of": AS_OF, "seed": 11})
    store.add_warnings(warning_rows())
    return settings.store_file


def make_ui_world(folder: Path, **ui: object) -> UiWorld:
    """A fresh copy of the API tests' store with the hostile enterprise, the planner-shaped plan and
    warnings; a saved monitoring report; the shared tiny lake."""
    template = _template()
    settings = Settings(home=folder, service=ServiceSettings(audit_flush_seconds=0.2, lake_path=_lake(),
                                                             reload_check_seconds=0),
                        ui=UiSettings(**ui))  # type: ignore[arg-type]
    shutil.copyfile(_ui_store(), settings.store_file)
    write_monitor_report(settings)
    return UiWorld(Store(settings.store_file, lock_timeout=5), settings, template.tokens, template.key_ids,
                   _lake())


def warning_rows() -> pl.DataFrame:
    """Two warnings in Wuchang (one on the hostile enterprise) and one in Jiang'an."""
    return pl.DataFrame({
        "enterprise_id": [E_WIRE_WUCHANG, E_HOSTILE, E_WIRE_JIANGAN],
        "district": [WUCHANG, WUCHANG, JIANGAN], "sector": ["wire_cable"] * 3,
        "rule": ["licence_expiring", "complaint_surge", "licence_expiring"],
        "subject": ["L1", "2025-06", "L2"], "raised_on": [date(2025, 6, 28)] * 3,
        "text_zh": ["生产许可证将于30日内到期", HOSTILE_NAME, "生产许可证将于30日内到期"],
        "text_en": ["production licence expires within 30 days", HOSTILE_NAME,
                    "production licence expires within 30 days"],
    })


def write_monitor_report(settings: Settings) -> None:
    """A saved monitoring report in the CONTRACT §6 shape, where `riskengine monitor` keeps the latest."""
    def cell(n: int, rate: float) -> dict[str, float | int]:
        return {"random_inspections": n, "adverse_per_100": rate, "ci_low": rate * 0.6, "ci_high": rate * 1.5}

    months = [{"month": m, "grades": {"A": cell(120, 2.5), "B": cell(80, 6.0), "C": cell(40, 12.5),
                                      "D": cell(12, d)}, "monotone": d > 12.5, "psi_score": 0.04}
              for m, d in (("2025-04", 33.3), ("2025-05", 30.0), ("2025-06", 8.3))]
    report = {"as_of": "2025-07-01", "model_version": "1", "months": months,
              "alerts": [{"rule": "monotone", "detail": "2025-06: D below C (8.3 < 12.5 per 100)"}]}
    path = latest_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(world: World) -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1 (a thread of this process); yields its base URL."""
    app = create_app(service=make_service(world))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def override_until() -> str:
    """An override expiry the service accepts today."""
    return (date.today() + timedelta(days=30)).isoformat()
