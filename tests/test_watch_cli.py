"""``riskengine warnings`` and ``riskengine monitor`` end to end on the small city's lake."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from riskengine.cli import main
from riskengine.core.config import get_settings
from riskengine.core.contract import GRADES_SCHEMA
from riskengine.core.store import Store
from riskengine.lake.layout import scan_table
from riskengine.workflows.warnings import verify_signature
from tests.test_warnings import Receiver


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    monkeypatch.setenv("RISKENGINE_WEBHOOKS__BACKOFF_SECONDS", "0.01")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_warnings_are_raised_routed_stored_once_and_pushed(small_lake: Path, home: Path, tmp_path: Path):
    receiver = Receiver()
    try:
        sub = Store(get_settings().store_file).add_webhook(receiver.url, "admin")
        out = tmp_path / "w.json"
        assert run(["warnings", "--lake", str(small_lake), "--as-of", "2025-07-01", "--out", str(out)]) == 0
        raised = json.loads(out.read_text(encoding="utf-8"))
        assert raised, "the small city raises warnings"
        assert {"warning_id", "enterprise_id", "district", "rule", "raised_on"} <= set(raised[0])
        districts = dict(
            scan_table(small_lake, "enterprises").select("enterprise_id", "district").collect().iter_rows()
        )
        assert all(w["district"] == districts[w["enterprise_id"]] for w in raised)
        assert len(receiver.received) == len(raised)
        headers, body = receiver.received[0]
        assert verify_signature(sub.secret, headers["X-Riskengine-Signature"], body)
        assert run(["warnings", "--lake", str(small_lake), "--as-of", "2025-07-01", "--out", str(out)]) == 0
        assert json.loads(out.read_text(encoding="utf-8")) == []
        assert len(receiver.received) == len(raised)
    finally:
        receiver.close()


def test_monitor_writes_the_json_and_a_self_contained_html(small_lake: Path, home: Path, tmp_path: Path):
    store = Store(get_settings().store_file)
    ids = (
        scan_table(small_lake, "enterprises")
        .filter(pl.col("status") == "active")
        .select("enterprise_id", "district", "sector")
        .collect()
    )
    grades = ids.with_columns(
        pl.lit(date(2025, 1, 1)).alias("as_of"),
        pl.lit("B").alias("grade"),
        pl.lit("B").alias("model_grade"),
        pl.lit(0.1).alias("probability"),
        pl.lit(500).alias("score"),
        pl.lit("t").alias("model_version"),
    )
    store.save_grades(pl.concat([pl.DataFrame(schema=GRADES_SCHEMA), grades], how="diagonal_relaxed"))
    out = tmp_path / "m.json"
    code = run(
        [
            "monitor",
            "--lake",
            str(small_lake),
            "--as-of",
            "2025-07-01",
            "--months",
            "6",
            "--out",
            str(out),
            "--no-mlflow",
        ]
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    assert code == (1 if report["alerts"] else 0)
    assert len(report["months"]) == 6 and report["months"][0]["grades"]["B"]["random_inspections"] > 0
    html = tmp_path / "m.html"
    run(
        [
            "monitor",
            "--lake",
            str(small_lake),
            "--as-of",
            "2025-07-01",
            "--months",
            "6",
            "--out",
            str(html),
            "--no-mlflow",
            "--no-fail-on-alert",
        ]
    )
    text = html.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") >= 2 and "<script" not in text and 'src="http' not in text
    assert text.index("各等级随机检查发现率") < text.index("Adverse outcomes per 100")


def test_monitor_refuses_an_unknown_output_kind(small_lake: Path, home: Path, tmp_path: Path, capsys):
    assert (
        run(["monitor", "--lake", str(small_lake), "--as-of", "2025-07-01", "--out", str(tmp_path / "m.txt")])
        == 2
    )
    assert "--out must end .html or .json" in capsys.readouterr().err
