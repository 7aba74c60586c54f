"""Hypothesis strategies for small enterprise histories that stress the time rule.

Dates are drawn mostly from a set of *boundary days* around each as_of D: D itself, D +- 1, and the
edges of every window and influence period (D - 90/365/1095 days, D - 3 months / 1 year / 3 years,
each +- 1 day, and 10 days before each minimum period), so that events exactly on as_of, late
``recorded_on`` and repairs on the boundary day come up in almost every example.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import strategies as st

from riskengine.core.contract import TABLES
from tests.feature_oracle import add_months

AS_OF = [date(2023, 3, 1), date(2024, 2, 29), date(2024, 3, 31)]
EIDS = ["E0", "E1", "E2", "E3"]
EVENT_DATES = {name: spec.event_date for name, spec in TABLES.items() if spec.event_date}


def boundary_days(as_of: list[date]) -> list[date]:
    days: set[date] = set()
    for d in as_of:
        for base in (
            d,
            d - timedelta(days=90),
            d - timedelta(days=365),
            d - timedelta(days=1095),
            add_months(d, -3),
            add_months(d, -12),
            add_months(d, -36),
            d - timedelta(days=1100),
        ):
            days.update(base + timedelta(days=k) for k in (-1, 0, 1))
        # Inside each influence period, between its minimum and its full length.
        days.update(add_months(d, -k) - timedelta(days=10) for k in (3, 12))
    return sorted(days)


def period_edges(as_of: list[date]) -> list[date]:
    """Decision days that put a penalty at the edges of its influence periods as of some D."""
    days: set[date] = set()
    for d in as_of:
        for months in (3, 12, 36):
            edge = add_months(d, -months)
            days.update(edge + timedelta(days=k) for k in (-10, -1, 0, 1))
    return sorted(days)


def a_day(as_of: list[date]) -> st.SearchStrategy[date]:
    return st.one_of(
        st.sampled_from(boundary_days(as_of)),
        st.dates(min_value=date(2019, 6, 1), max_value=max(as_of) + timedelta(days=60)),
    )


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def recorded_after(draw: st.DrawFn, event: date, as_of: list[date]) -> date | None:
    """recorded_on: usually absent, else the event day, a little later, or a boundary day after it."""
    choice = draw(st.sampled_from(["none", "none", "same", "late", "boundary"]))
    if choice == "none":
        return None
    if choice == "same":
        return event
    if choice == "late":
        return event + timedelta(days=draw(st.integers(1, 120)))
    later = [b for b in boundary_days(as_of) if b >= event]
    return draw(st.sampled_from(later)) if later else event


@st.composite
def histories(draw: st.DrawFn, as_of: list[date] = AS_OF, max_events: int = 6) -> dict[str, list[dict]]:
    """Every contract table as a list of rows: a handful of enterprises and events per table."""
    day = a_day(as_of)
    n_ent = draw(st.integers(1, len(EIDS)))
    enterprises = [
        {
            "enterprise_id": EIDS[i],
            "name": None,
            "district": draw(st.sampled_from(["420106", "420102"])),
            "sector": draw(st.sampled_from(["wire_cable", "fire_products", "food_related", "bakery"])),
            "industry_code": None,
            "established_on": draw(st.one_of(st.sampled_from(as_of), st.just(date(2018, 1, 1)), day)),
            "registered_capital": draw(maybe(st.floats(0, 1e4, allow_nan=False))),
            "legal_rep_id": draw(st.sampled_from([None, "R1", "R2"])),
            "status": draw(st.sampled_from(["active", "suspended", "revoked", "deregistered"])),
        }
        for i in range(n_ent)
    ]
    eid = st.sampled_from(EIDS[:n_ent])

    def events(make: Any) -> list[dict]:
        return [make(i) for i in range(draw(st.integers(0, max_events)))]

    def dated(row: dict, column: str, when: st.SearchStrategy[date] = day) -> dict:
        row[column] = draw(when)
        row["recorded_on"] = draw(recorded_after(row[column], as_of))
        return row

    inspections = events(
        lambda i: dated(
            {
                "inspection_id": f"I{i}",
                "enterprise_id": draw(eid),
                "kind": draw(st.sampled_from(["random", "targeted", "complaint", "follow_up", "license"])),
                "inspector_id": draw(st.sampled_from([None, "P1", "P2"])),
                "outcome": draw(st.sampled_from(["pass", "conditional", "fail"])),
                "findings_minor": draw(maybe(st.integers(0, 3))),
                "findings_serious": draw(st.integers(0, 2)),
                "findings_critical": draw(st.integers(0, 1)),
            },
            "inspected_on",
        )
    )
    sampling = events(
        lambda i: dated(
            {
                "test_id": f"T{i}",
                "enterprise_id": draw(eid),
                "product": None,
                "result": draw(st.sampled_from(["pass", "fail"])),
                "hazard": draw(st.sampled_from([None, "low", "medium", "high"])),
            },
            "sampled_on",
        )
    )
    penalties = events(
        lambda i: dated(
            {
                "case_id": f"C{i}",
                "enterprise_id": draw(eid),
                "severity": draw(st.sampled_from(["minor", "moderate", "serious"])),
                "fine_cny": draw(maybe(st.floats(0, 1e5, allow_nan=False))),
                "category": None,
                "dishonest_list": draw(st.booleans()),
            },
            "decided_on",
        )
    )
    # Most penalties get a repair (sometimes two), dated anywhere, including on the boundary days.
    repairs = [
        dated({"repair_id": f"X{p['case_id']}-{k}", "case_id": p["case_id"]}, "repaired_on")
        for p in penalties
        for k in range(draw(st.sampled_from([0, 1, 1, 2])))
    ]
    recalls = events(
        lambda i: dated(
            {
                "recall_id": f"Q{i}",
                "enterprise_id": draw(eid),
                "product": None,
                "units": draw(maybe(st.integers(0, 500))),
                "mode": draw(st.sampled_from(["voluntary", "ordered"])),
                "hazard": draw(st.sampled_from(["low", "medium", "high"])),
            },
            "announced_on",
        )
    )
    complaints = events(
        lambda i: dated(
            {
                "complaint_id": f"M{i}",
                "enterprise_id": draw(eid),
                "category": None,
                "substantiated": draw(st.sampled_from([None, True, False])),
            },
            "received_on",
        )
    )
    licenses = []
    for i in range(draw(st.integers(0, 4))):
        row = dated(
            {
                "license_id": f"L{i}",
                "enterprise_id": draw(eid),
                "kind": draw(st.sampled_from(["production_license", "ccc", "food_contact"])),
                "status": draw(st.sampled_from(["valid", "suspended", "revoked", "expired"])),
            },
            "issued_on",
        )
        row["expires_on"] = draw(maybe(day))
        row["status_changed_on"] = draw(day)
        licenses.append(row)
    list_entries = []
    for i in range(draw(st.integers(0, 4))):
        row = dated(
            {
                "entry_id": f"N{i}",
                "enterprise_id": draw(eid),
                "list": draw(st.sampled_from(["abnormal_operation", "serious_dishonest"])),
                "reason": None,
                "removal_reason": None,
            },
            "listed_on",
        )
        removed = draw(maybe(day))
        row["removed_on"] = None if removed is None else max(removed, row["listed_on"])
        list_entries.append(row)
    # Some entries are taken off their list later by a removal record of their own.
    removals = [
        dated({"removal_id": f"R{row['entry_id']}-{k}", "entry_id": row["entry_id"],
               "removal_reason": "credit_repair"}, "removed_on")
        for row in list_entries
        for k in range(draw(st.sampled_from([0, 0, 1, 2])))
    ]
    commitments = []
    for i in range(draw(st.integers(0, 4))):
        row = dated(
            {
                "commitment_id": f"K{i}",
                "enterprise_id": draw(eid),
                "kind": draw(st.sampled_from(["notification", "repair", "sector"])),
                "status": draw(st.sampled_from(["open", "kept", "breached"])),
            },
            "made_on",
        )
        row["due_on"] = draw(maybe(day))
        row["status_changed_on"] = None if row["status"] == "open" else draw(day)
        commitments.append(row)
    # Upheld objections void a few records (any voidable table), on boundary days too.
    voidable = [(name, row[key]) for name, key, rows in (
        ("inspections", "inspection_id", inspections), ("penalties", "case_id", penalties),
        ("list_entries", "entry_id", list_entries), ("commitments", "commitment_id", commitments),
        ("complaints", "complaint_id", complaints)) for row in rows]
    voids = []
    for i in range(draw(st.integers(0, 2)) if voidable else 0):
        table, record = draw(st.sampled_from(voidable))
        voids.append(dated({"void_id": f"V{i}", "enterprise_id": EIDS[0], "record_table": table,
                            "record_id": record, "case_id": None, "reason": None}, "voided_on"))
    drawn = {
        "enterprises": enterprises,
        "record_voids": voids,
        "list_entries": list_entries,
        "list_removals": removals,
        "commitments": commitments,
        "inspections": inspections,
        "sampling_tests": sampling,
        "penalties": penalties,
        "recalls": recalls,
        "complaints": complaints,
        "licenses": licenses,
        "credit_repairs": repairs,
    }
    # A contract table without a strategy above (e.g. a new event table) gets rows drawn from its
    # contract columns, dated on the boundary days like the rest.
    for name in TABLES:
        if name not in drawn:
            drawn[name] = events(lambda i, name=name: contract_row(draw, name, i, eid, day, dated))
    return drawn


def contract_row(draw: st.DrawFn, table: str, i: int, eid: st.SearchStrategy[str],
                 day: st.SearchStrategy[date], dated: Any) -> dict:
    """One row of ``table`` from its contract columns: the key numbered ``i``, an enterprise of the
    history, enum values, small numbers, dates on the boundary days (optional ones sometimes empty)."""
    spec = TABLES[table]
    row: dict[str, Any] = {}
    for c in spec.columns:
        if c.name in (spec.event_date, "recorded_on"):
            continue  # dated() below
        if c.name == spec.key:
            value: Any = st.just(f"{table}-{i}")
        elif c.references == ("enterprises", "enterprise_id"):
            value = eid
        elif c.enum:
            value = st.sampled_from(c.enum)
        else:
            value = {"date": day, "bool": st.booleans(), "int": st.integers(0, 3),
                     "float": st.floats(0, 1e4, allow_nan=False)}.get(c.type, st.sampled_from(["a", "b"]))
        row[c.name] = draw(value if c.required else maybe(value))
    return dated(row, spec.event_date) if spec.event_date else row


def to_lazy(tables: dict[str, list[dict]]) -> dict[str, pl.LazyFrame]:
    """The rows as lazy frames with exactly the contract schema (as ``riskengine.lake.layout`` gives them)."""
    out = {}
    for name, spec in TABLES.items():
        rows = [{c: r.get(c) for c in spec.schema} for r in tables.get(name, [])]
        out[name] = pl.DataFrame(rows, schema=spec.schema).lazy()
    return out


def invisible(row: dict, table: str, d: date) -> bool:
    """A record the bureau could not know before D: dated or recorded on or after D."""
    when = row[EVENT_DATES[table]]
    rec = row.get("recorded_on")
    return when >= d or (rec is not None and rec >= d)


def future_of(tables: dict, d: date, data: st.DataObject) -> tuple[dict, dict]:
    """(tables without anything dated on or after D, tables with those records changed)."""
    past = copy.deepcopy(tables)
    changed = copy.deepcopy(tables)
    for table in EVENT_DATES:
        past[table] = [r for r in tables[table] if not invisible(r, table, d)]
        for row in changed[table]:
            if invisible(row, table, d):
                row[EVENT_DATES[table]] = d + timedelta(days=data.draw(st.integers(0, 400)))
                if table == "inspections":
                    row["outcome"] = data.draw(st.sampled_from(["pass", "conditional", "fail"]))
                if table == "penalties":
                    row["severity"] = data.draw(st.sampled_from(["minor", "moderate", "serious"]))
                    row["dishonest_list"] = data.draw(st.booleans())
            elif table == "licenses" and row["status_changed_on"] >= d:
                # The licence is known, but its current status took effect on or after D.
                row["status"] = data.draw(st.sampled_from(["valid", "suspended", "revoked", "expired"]))
            elif table == "commitments" and (row["status_changed_on"] or date.min) >= d:
                row["status"] = data.draw(st.sampled_from(["kept", "breached"]))
            elif table == "list_entries" and row["removed_on"] is not None and row["removed_on"] >= d:
                # Removed on or after D: still listed as of D, whatever the day.
                row["removed_on"] = d + timedelta(days=data.draw(st.integers(0, 400)))
        if data.draw(st.booleans()):  # a brand-new record dated on D
            extra = copy.deepcopy(data.draw(st.sampled_from(tables[table]))) if tables[table] else None
            if extra is not None:
                extra[EVENT_DATES[table]] = d
                changed[table].append(
                    extra
                    | {
                        k: f"{v}-new"
                        for k, v in extra.items()
                        if k.endswith("_id") and k not in ("enterprise_id", "case_id", "inspector_id")
                    }
                )
    # A new enterprise established on D (with no records) is not there as of D either.
    changed["enterprises"].append(tables["enterprises"][0] | {"enterprise_id": "E9", "established_on": d})
    return past, changed
