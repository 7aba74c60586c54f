"""A small served world for the API tests: four enterprises in two districts and three sectors, two
scored as_of dates, a plan, one key per role and a tiny real LightGBM model (no MLflow needed)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
from fastapi.testclient import TestClient

from api.main import create_app
from api.state import Service
from riskengine.core.config import ServiceSettings, Settings
from riskengine.core.ids import uscc_check_char
from riskengine.core.keys import new_key
from riskengine.core.store import GRADES_SCHEMA, Store

WUCHANG, JIANGAN = "420106", "420102"
AS_OF_OLD, AS_OF = date(2025, 1, 1), date(2025, 7, 1)
PERIOD = "2025-07"


def uscc(n: int, district: str = WUCHANG) -> str:
    """A valid Unified Social Credit Code numbered ``n``."""
    first17 = f"91{district}MA4K{n:05d}"
    return first17 + uscc_check_char(first17)


# enterprise id -> (district, sector, grade now, grade before)
E_WIRE_WUCHANG = uscc(1)
E_WIRE_JIANGAN = uscc(2, JIANGAN)
E_FOOD_WUCHANG = uscc(3)
E_RETAIL_JIANGAN = uscc(4, JIANGAN)
NOBODY = uscc(999)  # well formed, never graded
WORLD = {
    E_WIRE_WUCHANG: (WUCHANG, "wire_cable", "C", "B"),
    E_WIRE_JIANGAN: (JIANGAN, "wire_cable", "A", "A"),
    E_FOOD_WUCHANG: (WUCHANG, "food_related", "D", "C"),
    E_RETAIL_JIANGAN: (JIANGAN, "retail", "B", "B"),
}
SCORES = {"A": 200, "B": 500, "C": 700, "D": 900}


def grades_frame(as_of: date, version: str = "1", *, now: bool = True) -> pl.DataFrame:
    rows = []
    for i, (eid, (district, sector, grade_now, grade_before)) in enumerate(WORLD.items()):
        grade = grade_now if now else grade_before
        rows.append(
            {
                "enterprise_id": eid,
                "as_of": as_of,
                "name": f"武汉测试企业{i}",
                "district": district,
                "sector": sector,
                "probability": SCORES[grade] / 1000,
                "score": SCORES[grade],
                "grade": grade,
                "model_grade": "B" if grade == "D" else grade,
                "rule": "R1_DISHONEST_LIST" if grade == "D" else None,
                "reasons": [
                    {
                        "code": "sampling__fail_365d",
                        "contribution": 0.8,
                        "text_zh": "近365天抽检不合格2次",
                        "text_en": "2 failed sampling tests in the last 365 days",
                    },
                    {
                        "code": "complaints__substantiated_365d",
                        "contribution": 0.3,
                        "text_zh": "近365天投诉属实1次",
                        "text_en": "1 substantiated complaint in the last 365 days",
                    },
                ],
                "model_version": version,
            }
        )
    return pl.DataFrame(rows, schema=GRADES_SCHEMA)


def plan_frame() -> pl.DataFrame:
    rows = [
        {
            "district": d,
            "rank": r,
            "enterprise_id": eid,
            "name": f"企业{r}",
            "sector": s,
            "grade": g,
            "score": SCORES[g],
            "why": "mandatory" if g == "D" else "random",
            "reasons": [{"code": "x", "contribution": 0.1, "text_zh": "原因", "text_en": "reason"}],
            "inspector": "P1",
            "due_on": date(2025, 7, 31),
        }
        for r, (eid, (d, s, g, _)) in enumerate(WORLD.items(), start=1)
    ]
    return pl.DataFrame(rows)


def tiny_model(version: str = "7"):  # type: ignore[no-untyped-def]
    """A real CreditModel on five catalog features, trained in milliseconds on random data."""
    from features import FEATURES
    from models.artifact import CreditModel

    names = [n for n, s in FEATURES.items() if s.dtype != "str" and not s.nuisance][:5]
    x = np.random.default_rng(0).random((300, len(names)))
    y = (x[:, 0] + 0.2 * x[:, 1] > 0.6).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4, "seed": 1},
        lgb.Dataset(x, y, feature_name=names),
        num_boost_round=10,
    )
    return CreditModel(booster, names, version=version)


@dataclass
class World:
    """A prepared store, its settings and one bearer token per role."""

    store: Store
    settings: Settings
    tokens: dict[str, str]
    key_ids: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def _build_world(folder: Path) -> World:
    settings = Settings(home=folder)
    store = Store(settings.store_file, lock_timeout=5)
    store.save_grades(grades_frame(AS_OF_OLD, version="0", now=False))
    store.save_grades(grades_frame(AS_OF, version="1"))
    store.save_plan(plan_frame(), {"period": PERIOD, "as_of": AS_OF, "seed": 11})
    tokens, key_ids = {}, {}
    for role, districts, sector in (
        ("inspector", [WUCHANG], None),
        ("credit_office", [], None),
        ("sector", [], "wire_cable"),
        ("admin", [], None),
    ):
        record, token = new_key(role, districts, sector, name=f"{role} tester")
        store.add_key(record)
        tokens[role], key_ids[role] = token, record.key_id
    return World(store, settings, tokens, key_ids)


@functools.cache
def _template() -> World:
    """Built once per test process; each test gets a copy of its store file (fast, independent)."""
    folder = Path(tempfile.mkdtemp(prefix="riskengine-api-world-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return _build_world(folder)


def make_world(tmp_path: Path, **service: object) -> World:
    """A fresh copy of the served world in ``tmp_path`` (audit written at shutdown unless told)."""
    template = _template()
    settings = Settings(home=tmp_path, service=ServiceSettings(**{"audit_flush_seconds": 3600.0, **service}))
    shutil.copyfile(template.store.path, settings.store_file)
    return World(Store(settings.store_file, lock_timeout=5), settings, template.tokens, template.key_ids)


def make_service(world: World, model_loader: Callable[[Settings], object] | None = None) -> Service:
    model = tiny_model()
    return Service(world.settings, store=world.store, model_loader=model_loader or (lambda settings: model))  # type: ignore[arg-type,return-value]


@contextmanager
def serve(world: World, model_loader: Callable[[Settings], object] | None = None) -> Iterator[TestClient]:
    """The real app over HTTP (lifespan runs: start on enter, audit flush on exit)."""
    app = create_app(service=make_service(world, model_loader))
    with TestClient(app) as client:
        yield client
