"""`riskengine publish`: what a bureau may publish as of D, and nothing more (CONTRACT §9)."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from riskengine.supervision.policy import default_policy_text, load_policy, parse_policy
from riskengine.workflows.publish import formula_safe, publication, publish
from tests.share_helpers import enterprises, penalty, uscc, write_source

AS_OF = date(2025, 6, 1)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from riskengine.lake.ingest import ingest

    tmp = tmp_path_factory.mktemp("publish")
    src = write_source(
        tmp / "src",
        {
            "enterprises": enterprises(6, names={1: HOSTILE, 2: FORMULA}),
            "penalties": [
                penalty("SERIOUS-OLD", 1, "2023-01-05", "serious"),  # 36 months: still published
                penalty("MODERATE-RUNNING", 2, "2024-09-01", "moderate"),  # 12 months: published
                penalty("MODERATE-OVER", 3, "2024-05-01", "moderate"),  # ended 2025-05-01
                penalty("MINOR-SIMPLE", 3, "2025-04-01", "minor", 2000.0),  # simple procedure: never
                penalty("MINOR-WARNING", 3, "2025-04-02", "minor", None),  # a warning: simple procedure
                penalty("MINOR-ORDINARY", 4, "2025-04-03", "minor", 8000.0),  # 3 months: published
                penalty("REPAIRED", 5, "2024-01-10", "serious"),  # repaired: withdrawn
                penalty("REPAIRED-LATER", 5, "2024-02-10", "serious"),  # repair after D: still published
                penalty("DECIDED-AFTER", 6, "2025-06-01", "serious"),  # not known as of D
                penalty("VOIDED", 6, "2025-01-15", "serious"),  # objection upheld before D
            ],
            "credit_repairs": [
                {"repair_id": "RP1", "case_id": "REPAIRED", "repaired_on": "2025-03-01"},
                {"repair_id": "RP2", "case_id": "REPAIRED-LATER", "repaired_on": "2025-07-01"},
            ],
            "list_entries": [
                {
                    "entry_id": "L-LISTED",
                    "enterprise_id": uscc(1),
                    "list": "abnormal_operation",
                    "reason": "unreachable_address",
                    "listed_on": "2024-11-01",
                    "removed_on": None,
                },
                {
                    "entry_id": "L-REMOVED",
                    "enterprise_id": uscc(2),
                    "list": "abnormal_operation",
                    "reason": "annual_report_missing",
                    "listed_on": "2024-01-01",
                    "removed_on": "2025-02-01",
                    "removal_reason": "rectified",
                },
                {
                    "entry_id": "L-REPAIRED",
                    "enterprise_id": uscc(4),
                    "list": "serious_dishonest",
                    "reason": "serious_violation",
                    "listed_on": "2024-01-01",
                    "removed_on": None,
                },
                {
                    "entry_id": "L-REMOVED-AFTER",
                    "enterprise_id": uscc(3),
                    "list": "serious_dishonest",
                    "reason": "serious_violation",
                    "listed_on": "2024-01-01",
                    "removed_on": "2025-07-01",
                    "removal_reason": "credit_repair",
                },
            ],
            "list_removals": [
                {
                    "removal_id": "RM1",
                    "entry_id": "L-REPAIRED",
                    "removed_on": "2025-05-01",
                    "removal_reason": "credit_repair",
                },
            ],
            "record_voids": [
                {
                    "void_id": "V1",
                    "enterprise_id": uscc(6),
                    "record_table": "penalties",
                    "record_id": "VOIDED",
                    "voided_on": "2025-02-01",
                },
            ],
        },
    )
    lake = tmp / "lake"
    ingest(src, lake, ingest_day=date(2025, 12, 31))
    return lake


def test_only_records_in_their_publication_period_are_published(lake: Path) -> None:
    rows = publication(lake, AS_OF, load_policy())
    assert sorted(rows["record_id"]) == sorted(
        ["SERIOUS-OLD", "MODERATE-RUNNING", "MINOR-ORDINARY", "REPAIRED-LATER", "L-LISTED", "L-REMOVED-AFTER"]
    )


def test_publication_periods_come_from_the_policy_file(lake: Path) -> None:
    longer = parse_policy(default_policy_text().replace("moderate_months = 12", "moderate_months = 24"))
    assert "MODERATE-OVER" in publication(lake, AS_OF, longer)["record_id"].to_list()
    row = publication(lake, AS_OF, load_policy()).filter(record_id="MINOR-ORDINARY").row(0, named=True)
    assert row["published_until"] == date(2025, 7, 3)


def test_the_files_carry_no_grade_score_or_reason(lake: Path, tmp_path: Path) -> None:
    n = publish(lake, AS_OF, tmp_path, load_policy())
    payload = json.loads((tmp_path / "records.json").read_text(encoding="utf-8"))
    assert payload["count"] == n == 6
    keys = {k for r in payload["records"] for k in r}
    header = next(csv.reader((tmp_path / "records.csv").open(encoding="utf-8-sig")))
    for forbidden in ("grade", "score", "probability", "reason", "reasons"):
        assert forbidden not in keys and forbidden not in header
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "grade" not in html.lower() and "score" not in html.lower()


def test_hostile_names_are_text_in_html_and_inert_in_csv(lake: Path, tmp_path: Path) -> None:
    publish(lake, AS_OF, tmp_path, load_policy())
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert HOSTILE not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # only the page's own search script
    assert "<link" not in html and 'src="http' not in html  # self-contained
    rows = list(csv.DictReader((tmp_path / "records.csv").open(encoding="utf-8-sig")))
    names = {r["uscc"]: r["name"] for r in rows}
    assert names[uscc(2)] == "'" + FORMULA


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1+1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starters_are_prefixed(cell: str) -> None:
    assert formula_safe(cell) == "'" + cell


def test_a_negative_number_is_left_a_number() -> None:
    assert formula_safe("-1") == "-1" and formula_safe(-2.5) == "-2.5"


def test_ordinary_text_is_left_alone() -> None:
    assert formula_safe("武汉 = 公司") == "武汉 = 公司" and formula_safe(None) == ""


def test_publish_cli_writes_the_three_files_and_audits_the_run(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from riskengine.cli import main
    from riskengine.core.config import get_settings
    from riskengine.core.store import Store

    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        main(["publish", "--lake", str(lake), "--as-of", "2025-06-01", "--out", str(tmp_path / "site")])
    get_settings.cache_clear()
    audit = Store(tmp_path / "riskengine.duckdb").audit().filter(action="publish")
    assert audit["detail"].to_list() == ["as_of=2025-06-01 records=6"]
    assert exit_.value.code == 0
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == [
        "index.html",
        "records.csv",
        "records.json",
    ]
    with pytest.raises(SystemExit) as exit_:
        main(["publish", "--lake", str(lake), "--as-of", "June", "--out", str(tmp_path / "site")])
    assert exit_.value.code == 2 and "--as-of must be a date" in capsys.readouterr().err
