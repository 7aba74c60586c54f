"""The serving store: grades per as_of, plans, overrides and the audit log in one DuckDB file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from riskengine.core.errors import ConflictError, FatalInputError, NotFoundError
from riskengine.core.store import GRADES_SCHEMA, Store, StoreBusyError

IDS = ["91350100M000100Y43", "91110000600037341L", "91420106MA4K00000X"]


def grades_frame(as_of: date, grades: list[str], version: str = "1") -> pl.DataFrame:
    n = len(grades)
    return pl.DataFrame(
        {
            "enterprise_id": IDS[:n],
            "as_of": [as_of] * n,
            "name": [f"企业{i}" for i in range(n)],
            "district": ["420106"] * n,
            "sector": ["wire_cable"] * n,
            "probability": [0.1 * (i + 1) for i in range(n)],
            "score": [100 * (i + 1) for i in range(n)],
            "grade": grades,
            "model_grade": grades,
            "rule": [None] * n,
            "reasons": [[{"code": "sampling__fail_365d", "contribution": 0.4,
                          "text_zh": "近365天抽检不合格1次",
                          "text_en": "1 failed sampling test in the last 365 days"}]] * n,
            "model_version": [version] * n,
        },
        schema=GRADES_SCHEMA,
    )


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "riskengine.duckdb", lock_timeout=5)


def test_saved_grades_come_back_unchanged(store: Store) -> None:
    frame = grades_frame(date(2025, 1, 1), ["A", "B", "D"])
    store.save_grades(frame)
    assert store.latest_grades().equals(frame.sort("enterprise_id"))


def test_saving_an_as_of_again_replaces_it_instead_of_adding_rows(store: Store) -> None:
    store.save_grades(grades_frame(date(2025, 1, 1), ["A", "B", "D"], version="1"))
    store.save_grades(grades_frame(date(2025, 1, 1), ["C", "C"], version="2"))
    got = store.latest_grades(date(2025, 1, 1))
    assert got["grade"].to_list() == ["C", "C"]
    assert set(got["model_version"]) == {"2"}


def test_latest_grades_defaults_to_the_newest_as_of_and_keeps_older_ones(store: Store) -> None:
    store.save_grades(grades_frame(date(2025, 1, 1), ["A", "A"]))
    store.save_grades(grades_frame(date(2025, 2, 1), ["D", "D"]))
    assert store.latest_grades()["as_of"].unique().to_list() == [date(2025, 2, 1)]
    assert store.grade_dates() == [date(2025, 1, 1), date(2025, 2, 1)]
    assert store.grade_history(IDS[0])["grade"].to_list() == ["A", "D"]


def test_a_bad_grades_frame_names_row_and_column_and_leaves_the_store_unchanged(store: Store) -> None:
    good = grades_frame(date(2025, 1, 1), ["A", "B"])
    store.save_grades(good)
    bad = grades_frame(date(2025, 1, 1), ["A", "E"])
    with pytest.raises(FatalInputError, match=r"row 1, column grade: must be one of A/B/C/D; got 'E'"):
        store.save_grades(bad)
    assert store.latest_grades().equals(good.sort("enterprise_id"))


def test_a_grades_frame_without_a_contract_column_is_refused(store: Store) -> None:
    with pytest.raises(FatalInputError, match="missing column.*reasons"):
        store.save_grades(grades_frame(date(2025, 1, 1), ["A"]).drop("reasons"))


def test_reading_grades_from_an_empty_store_says_to_score_first(store: Store) -> None:
    with pytest.raises(NotFoundError, match="riskengine score"):
        store.latest_grades()
    assert not store.path.exists()  # reading never creates the file


def test_a_plan_replaces_the_earlier_plan_of_its_period_and_keeps_its_meta(store: Store) -> None:
    plan1 = pl.DataFrame({"district": ["420106"], "rank": [1], "enterprise_id": [IDS[0]]})
    plan2 = pl.DataFrame({"district": ["420106", "420106"], "rank": [1, 2], "enterprise_id": IDS[:2]})
    store.save_plan(plan1, {"period": "2026-01", "as_of": date(2026, 1, 1), "seed": 1})
    store.save_plan(plan2, {"period": "2026-01", "as_of": date(2026, 1, 1), "seed": 2,
                            "shortfalls": {"420106": 0}})
    stored = store.plan("2026-01")
    assert stored.rows.equals(plan2)
    assert stored.meta["seed"] == 2 and stored.meta["shortfalls"] == {"420106": 0}
    assert store.plan_periods() == ["2026-01"]
    with duckdb.connect(str(store.path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert [t for t in tables if t.startswith("plan_rows_")] == [f"plan_rows_{stored.plan_id}"]


def test_the_content_version_changes_with_every_saved_grade_run_or_plan(store: Store) -> None:
    empty = store.content_version()
    store.save_grades(grades_frame(date(2025, 1, 1), ["A", "B", "C"]))
    first = store.content_version()
    assert first != empty and store.content_version() == first  # reading changes nothing
    store.save_grades(grades_frame(date(2025, 1, 1), ["D", "B", "C"]))  # the same as_of again
    second = store.content_version()
    assert second != first
    store.save_plan(pl.DataFrame({"district": ["420106"], "rank": [1], "enterprise_id": IDS[:1]}),
                    {"period": "2025-01"})
    assert store.content_version() != second


def test_a_plan_without_a_period_is_refused(store: Store) -> None:
    with pytest.raises(FatalInputError, match="period"):
        store.save_plan(pl.DataFrame({"rank": [1]}), {"seed": 1})


def test_the_newest_override_of_an_enterprise_is_listed_last(store: Store) -> None:
    store.add_override(IDS[0], "C", "现场检查发现问题", date(2027, 1, 1), "credit-office-1")
    store.add_override(IDS[0], "D", "再次发现问题", date(2027, 6, 1), "credit-office-1")
    assert [o.grade for o in store.overrides(IDS[0])] == ["C", "D"]
    assert store.overrides(IDS[1]) == []


def test_an_override_needs_a_reason(store: Store) -> None:
    with pytest.raises(FatalInputError, match="reason"):
        store.add_override(IDS[0], "C", "  ", date(2027, 1, 1), "someone")


def test_a_withdrawal_is_recorded_and_persists_for_a_new_store_on_the_same_file(store: Store) -> None:
    made = store.add_override(IDS[0], "D", "误录", date(2027, 1, 1), "credit-office-1",
                              created_at=datetime(2026, 3, 1, 9))
    at = datetime(2026, 3, 2, 10, 30)
    got = store.withdraw_override(made.override_id, "credit-office-2", "录入错误", at)
    assert (got.withdrawn_at, got.withdrawn_by, got.withdraw_reason) == (at, "credit-office-2", "录入错误")
    (again,) = Store(store.path).overrides(IDS[0])  # kept, not deleted, and read back by a new Store
    assert again == got
    assert again.active_on(at - timedelta(seconds=1)) and not again.active_on(at)
    assert again.active_on(date(2026, 3, 1)) and not again.active_on(date(2026, 3, 2))


def test_withdrawing_an_unknown_override_or_another_enterprises_is_not_found(store: Store) -> None:
    made = store.add_override(IDS[0], "D", "误录", date(2027, 1, 1), "co")
    with pytest.raises(NotFoundError, match="no override with id 999"):
        store.withdraw_override(999, "co", "撤回", datetime(2026, 3, 2))
    with pytest.raises(NotFoundError):
        store.withdraw_override(made.override_id, "co", "撤回", datetime(2026, 3, 2), enterprise_id=IDS[1])
    assert not store.overrides(IDS[0])[0].withdrawn


def test_an_override_can_be_withdrawn_only_once(store: Store) -> None:
    made = store.add_override(IDS[0], "D", "误录", date(2027, 1, 1), "co", created_at=datetime(2026, 3, 1))
    store.withdraw_override(made.override_id, "first", "撤回", datetime(2026, 3, 2))
    with pytest.raises(ConflictError, match="already withdrawn .* by first"):
        store.withdraw_override(made.override_id, "second", "再撤回", datetime(2026, 3, 3))
    assert store.overrides()[0].withdrawn_by == "first"


def test_an_expired_override_cannot_be_withdrawn(store: Store) -> None:
    made = store.add_override(IDS[0], "D", "误录", date(2026, 3, 10), "co", created_at=datetime(2026, 3, 1))
    with pytest.raises(ConflictError, match="expired on 2026-03-10"):
        store.withdraw_override(made.override_id, "co", "撤回", datetime(2026, 3, 10, 8))


def test_a_withdrawal_needs_a_reason(store: Store) -> None:
    made = store.add_override(IDS[0], "D", "误录", date(2027, 1, 1), "co", created_at=datetime(2026, 3, 1))
    with pytest.raises(FatalInputError, match="reason"):
        store.withdraw_override(made.override_id, "co", "  ", datetime(2026, 3, 2))
    assert not store.overrides()[0].withdrawn


def _old_store_file(path: Path) -> None:
    """A store file as the code before withdrawals wrote it: every table, but the overrides table
    without the withdrawal columns, holding one override."""
    Store(path).initialise()
    with duckdb.connect(str(path)) as con:
        con.execute("""
            DROP TABLE overrides;
            CREATE TABLE overrides (override_id BIGINT PRIMARY KEY, enterprise_id VARCHAR NOT NULL,
                grade VARCHAR NOT NULL, reason VARCHAR NOT NULL, expires_on DATE NOT NULL,
                created_by VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL);
            INSERT INTO overrides VALUES (nextval('override_ids'), '91350100M000100Y43', 'D', '旧记录',
                DATE '2027-01-01', 'co', TIMESTAMP '2026-01-05 09:00:00');
        """)


def test_a_store_file_from_before_withdrawals_reads_its_overrides_without_being_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    _old_store_file(path)
    (old,) = Store(path).overrides()  # read-only: the columns cannot be added yet
    assert (old.grade, old.reason, old.withdrawn_at) == ("D", "旧记录", None)


def test_a_store_file_from_before_withdrawals_gains_the_columns_on_open_and_works(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_store_file(path)
    store = Store(path, lock_timeout=5)
    store.initialise()  # what `riskengine serve` does on start
    (old,) = store.overrides()
    store.withdraw_override(old.override_id, "co", "撤回旧记录", datetime(2026, 2, 1))
    newer = store.add_override(IDS[1], "B", "新记录", date(2027, 1, 1), "co")
    assert [o.withdrawn for o in Store(path).overrides()] == [True, False]
    assert newer.override_id == old.override_id + 1


def test_audit_batches_retried_after_a_failure_are_not_written_twice(store: Store) -> None:
    entry = {"entry_id": "abc", "occurred_at": datetime(2026, 1, 2, 3, 4), "action": "read_grade",
             "status": 200}
    assert store.append_audit([entry]) == 1
    assert store.append_audit([entry]) == 0
    assert store.audit().height == 1


def test_audit_since_keeps_entries_from_that_day_on(store: Store) -> None:
    day = datetime(2026, 3, 1)
    store.append_audit([
        {"entry_id": str(i), "occurred_at": day + timedelta(days=i - 1), "action": "read_grade",
         "status": 200}
        for i in range(3)
    ])
    assert store.audit(since=date(2026, 3, 1))["entry_id"].to_list() == ["1", "2"]


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_write_waits_for_another_process_holding_the_store(store: Store) -> None:
    store.initialise()
    holder = _hold_lock(store.path, 1.0)
    try:
        store.save_grades(grades_frame(date(2025, 1, 1), ["A"]))
    finally:
        holder.wait()
    assert store.latest_grades().height == 1


def test_a_store_locked_longer_than_the_timeout_raises_store_busy(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb", lock_timeout=0.3)
    store.initialise()
    holder = _hold_lock(store.path, 3.0)
    try:
        with pytest.raises(StoreBusyError, match="locked by another process"):
            store.latest_grades()
    finally:
        holder.kill()
        holder.wait()


def test_families_that_appear_on_first_write_read_empty_on_an_older_store_and_leave_it_readable(
        store: Store) -> None:
    from riskengine.core.store.cases import CaseStore
    from riskengine.core.store.sessions import SessionStore

    store.save_grades(grades_frame(date(2025, 1, 1), ["A", "B"]))
    assert CaseStore(store).all() == [] and SessionStore(store).of_key("K1") == []
    SessionStore(store).create("K1", datetime(2025, 1, 2, 9))
    con = duckdb.connect(str(store.path), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert "ui_sessions" in tables and "cases" not in tables  # Store's tables and its own, no other family's
    assert [s.key_id for s in SessionStore(store).of_key("K1")] == ["K1"]
    assert store.latest_grades().height == 2
