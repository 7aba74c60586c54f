"""A slow, obviously correct plain-Python reference for every feature of ``features.FEATURES``.

Tables are lists of dicts (contract columns). For each as_of D and each enterprise established
before D it walks the records one by one, keeps those the bureau knew before D (event date < D and
recorded_on < D), and computes each feature straight from its definition. No Polars, no cleverness:
the point is to be easy to check by reading.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from features import FAMILIES
from riskengine.core.contract import TABLES

Row = dict[str, Any]
Tables = dict[str, list[Row]]

STRICTNESS_PRIOR = 20.0
OUTCOME_RANK = {"pass": 0, "conditional": 1, "fail": 2}
REQUIRED = {"wire_cable": ["production_license"], "fire_products": ["ccc"]}


def add_months(d: date, months: int) -> date:
    """Calendar month arithmetic, clamping to the end of a shorter month (Jan 31 + 1 month = Feb 28/29)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def known(row: Row, column: str, d: date) -> bool:
    """The record's date ``column`` is before D and it was recorded before D."""
    when = row.get(column)
    rec = row.get("recorded_on")
    return when is not None and when < d and (rec is None or rec < d)


def age(row: Row, column: str, d: date) -> int:
    return (d - row[column]).days


def in_last(row: Row, column: str, d: date, days: int) -> bool:
    return known(row, column, d) and age(row, column, d) <= days


def ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def strictness_table(inspections: list[Row], d: date) -> dict[str, float]:
    """Each inspector's shrunk fail rate minus the population fail rate, from inspections seen before D."""
    seen = [r for r in inspections if known(r, "inspected_on", d)]
    if not seen:
        return {}
    p = sum(r["outcome"] == "fail" for r in seen) / len(seen)
    out: dict[str, float] = {}
    for who in {r["inspector_id"] for r in seen if r["inspector_id"] is not None}:
        mine = [r for r in seen if r["inspector_id"] == who]
        fails = sum(r["outcome"] == "fail" for r in mine)
        out[who] = (fails + STRICTNESS_PRIOR * p) / (len(mine) + STRICTNESS_PRIOR) - p
    return out


RATE_HALF_LIFE, RATE_PRIOR = 1460.0, 1.0


def _found(r: Row) -> dict[str, float]:
    c, s, m = (r[f"findings_{k}"] or 0 for k in ("critical", "serious", "minor"))
    return {"adverse_share": float(r["outcome"] == "fail" or c > 0), "critical_per_inspection": c,
            "serious_per_inspection": s, "minor_per_inspection": m,
            "findings_weighted_per_inspection": 3 * c + 2 * s + m}


def decayed_rates(seen: list[Row], everyone: list[Row], d: date) -> Row:
    """Time-decayed found-per-inspection rates, shrunk to the population's with one pseudo-inspection."""
    def sums(rows: list[Row]) -> tuple[float, dict[str, float]]:
        w = [0.5 ** (age(r, "inspected_on", d) / RATE_HALF_LIFE) for r in rows]
        keys = _found(everyone[0]) if rows else {}
        return sum(w), {k: sum(wi * _found(r)[k] for wi, r in zip(w, rows, strict=True)) for k in keys}
    pop_w, pop = sums([r for r in everyone if known(r, "inspected_on", d)])
    mine_w, mine = sums(seen)
    names = ("adverse_share", "critical_per_inspection", "serious_per_inspection", "minor_per_inspection",
             "findings_weighted_per_inspection")
    if not seen:
        return {f"inspections__{k}": None for k in names}
    return {f"inspections__{k}": (mine[k] + RATE_PRIOR * pop[k] / pop_w) / (mine_w + RATE_PRIOR)
            for k in names}


def inspections(rows: list[Row], everyone: list[Row], d: date) -> Row:
    f: Row = {}
    seen = [r for r in rows if known(r, "inspected_on", d)]
    for w in (90, 365, 1095):
        win = [r for r in seen if age(r, "inspected_on", d) <= w]
        f[f"inspections__count_{w}d"] = len(win)
        f[f"inspections__fail_{w}d"] = sum(r["outcome"] == "fail" for r in win)
        f[f"inspections__conditional_{w}d"] = sum(r["outcome"] == "conditional" for r in win)
        for k in ("random", "targeted", "complaint", "follow_up", "license"):
            f[f"inspections__{k}_{w}d"] = sum(r["kind"] == k for r in win)
        if w in (365, 1095):
            f[f"inspections__fail_rate_{w}d"] = ratio(f[f"inspections__fail_{w}d"], len(win))
            for sev in ("minor", "serious", "critical"):
                f[f"inspections__findings_{sev}_{w}d"] = sum(r[f"findings_{sev}"] or 0 for r in win)
    f["inspections__count_ever"] = len(seen)
    f["inspections__fail_ever"] = sum(r["outcome"] == "fail" for r in seen)
    f["inspections__never_inspected"] = int(not seen)
    fails = [r for r in seen if r["outcome"] == "fail"]
    f["inspections__days_since_last"] = min((age(r, "inspected_on", d) for r in seen), default=None)
    f["inspections__days_since_last_fail"] = min((age(r, "inspected_on", d) for r in fails), default=None)
    f.update(decayed_rates(seen, everyone, d))
    strict = strictness_table(everyone, d)
    if seen:
        # Latest day; on a tie the worse outcome, then the later row of the table.
        last = max(seen, key=lambda r: (r["inspected_on"], OUTCOME_RANK[r["outcome"]], rows.index(r)))
        f["inspections__last_outcome"] = last["outcome"]
        f["inspections__inspector_strictness_last"] = strict.get(last["inspector_id"], 0.0)
    else:
        f["inspections__last_outcome"] = "none"
        f["inspections__inspector_strictness_last"] = 0.0
    recent = [
        strict[r["inspector_id"]]
        for r in seen
        if age(r, "inspected_on", d) <= 365 and r["inspector_id"] is not None
    ]
    f["inspections__inspector_strictness_mean_365d"] = sum(recent) / len(recent) if recent else 0.0
    return f


def sampling(rows: list[Row], d: date) -> Row:
    f: Row = {}
    weight = {"low": 1.0, "medium": 2.0, "high": 3.0, None: 1.0}
    for w in (365, 1095):
        win = [r for r in rows if in_last(r, "sampled_on", d, w)]
        fails = [r for r in win if r["result"] == "fail"]
        f[f"sampling__tests_{w}d"] = len(win)
        f[f"sampling__fail_{w}d"] = len(fails)
        f[f"sampling__fail_rate_{w}d"] = ratio(len(fails), len(win))
        f[f"sampling__hazard_weighted_fail_{w}d"] = sum(weight[r["hazard"]] for r in fails)
        f[f"sampling__high_hazard_fail_{w}d"] = sum(r["hazard"] == "high" for r in fails)
    return f


def penalty_active(p: Row, repairs: list[Row], d: date) -> bool:
    """SAMR Order 107 influence period, straight from the rule."""
    if not known(p, "decided_on", d):
        return False
    full, minimum = {"minor": (3, 3), "moderate": (12, 3), "serious": (36, 12)}[p["severity"]]
    if not add_months(p["decided_on"], full) > d:
        return False
    repaired = any(r["case_id"] == p["case_id"] and known(r, "repaired_on", d) for r in repairs)
    return not (repaired and add_months(p["decided_on"], minimum) <= d)


def penalties(rows: list[Row], repairs: list[Row], d: date) -> Row:
    f: Row = {}
    active = [p for p in rows if penalty_active(p, repairs, d)]
    last365 = [p for p in rows if in_last(p, "decided_on", d, 365)]
    for sev in ("minor", "moderate", "serious"):
        f[f"penalties__{sev}_active"] = sum(p["severity"] == sev for p in active)
        f[f"penalties__{sev}_365d"] = sum(p["severity"] == sev for p in last365)
    f["penalties__active"] = len(active)
    f["penalties__dishonest_active"] = int(any(p["dishonest_list"] for p in active))
    f["penalties__fine_cny_active"] = sum(p["fine_cny"] or 0.0 for p in active)
    f["penalties__fine_cny_365d"] = sum(p["fine_cny"] or 0.0 for p in last365)
    last1095 = [p for p in rows if in_last(p, "decided_on", d, 1095)]
    f["penalties__count_1095d"] = len(last1095)
    f["penalties__repaired_1095d"] = sum(
        any(r["case_id"] == p["case_id"] and known(r, "repaired_on", d) for r in repairs) for p in last1095
    )
    return f


def recalls(rows: list[Row], d: date) -> Row:
    f: Row = {}
    for w in (365, 1095):
        win = [r for r in rows if in_last(r, "announced_on", d, w)]
        f[f"recalls__count_{w}d"] = len(win)
        f[f"recalls__ordered_{w}d"] = sum(r["mode"] == "ordered" for r in win)
        f[f"recalls__high_hazard_{w}d"] = sum(r["hazard"] == "high" for r in win)
        f[f"recalls__units_{w}d"] = sum(r["units"] or 0 for r in win)
    f["recalls__ordered_high_hazard_365d"] = sum(
        r["mode"] == "ordered" and r["hazard"] == "high" for r in rows if in_last(r, "announced_on", d, 365)
    )
    return f


def complaints(rows: list[Row], d: date) -> Row:
    n90 = sum(in_last(r, "received_on", d, 90) for r in rows)
    year = [r for r in rows if in_last(r, "received_on", d, 365)]
    three = [r for r in rows if in_last(r, "received_on", d, 1095)]
    subst = sum(r["substantiated"] is True for r in year)
    decided = sum(r["substantiated"] is not None for r in year)
    return {
        "complaints__count_90d": n90,
        "complaints__count_365d": len(year),
        "complaints__count_1095d": len(three),
        "complaints__substantiated_1095d": sum(r["substantiated"] is True for r in three),
        "complaints__substantiated_365d": subst,
        "complaints__substantiated_share_365d": ratio(subst, decided),
        "complaints__trend_90d": n90 - (len(year) - n90) * 90.0 / 275.0,
    }


def licence_status(lic: Row, d: date) -> str:
    """The status as of D: the current one if it took effect before D, else still valid."""
    changed = lic["status_changed_on"]
    return lic["status"] if changed is not None and changed < d else "valid"


def licenses(rows: list[Row], sector: str, d: date) -> Row:
    seen = [r for r in rows if known(r, "issued_on", d)]
    status = {r["license_id"]: licence_status(r, d) for r in seen}

    def expired(r: Row) -> bool:
        return (r["expires_on"] is not None and r["expires_on"] < d) or status[r["license_id"]] == "expired"

    valid = [r for r in seen if status[r["license_id"]] == "valid" and not expired(r)]
    f: Row = {"licenses__valid": len(valid)}
    for kind in ("production_license", "ccc"):
        f[f"licenses__valid_{kind}"] = int(any(r["kind"] == kind for r in valid))
    f["licenses__required_missing"] = sum(
        not any(r["kind"] == kind for r in valid) for kind in REQUIRED.get(sector, [])
    )
    f["licenses__suspended"] = sum(status[r["license_id"]] == "suspended" for r in seen)
    revoked = [r for r in seen if status[r["license_id"]] == "revoked"]
    f["licenses__revoked"] = len(revoked)
    f["licenses__revoked_365d"] = sum((d - r["status_changed_on"]).days <= 365 for r in revoked)
    f["licenses__expired"] = sum(expired(r) for r in seen)
    f["licenses__days_to_expiry"] = min(
        ((r["expires_on"] - d).days for r in valid if r["expires_on"] is not None), default=None
    )
    return f


def severity_index(t: Tables, eid: str, d: date, half_life: float) -> float:
    total = 0.0

    def add(weight: float, when: date) -> None:
        nonlocal total
        total += weight * 0.5 ** ((d - when).days / half_life)

    for r in t["inspections"]:
        if r["enterprise_id"] == eid and known(r, "inspected_on", d):
            add({"fail": 3.0, "conditional": 1.0, "pass": 0.0}[r["outcome"]], r["inspected_on"])
    for r in t["sampling_tests"]:
        if r["enterprise_id"] == eid and known(r, "sampled_on", d) and r["result"] == "fail":
            add({"low": 2.0, "medium": 3.0, "high": 4.0, None: 3.0}[r["hazard"]], r["sampled_on"])
    for r in t["penalties"]:
        if r["enterprise_id"] == eid and known(r, "decided_on", d):
            w = {"minor": 1.0, "moderate": 3.0, "serious": 6.0}[r["severity"]] + (
                4.0 if r["dishonest_list"] else 0
            )
            add(w, r["decided_on"])
    for r in t["recalls"]:
        if r["enterprise_id"] == eid and known(r, "announced_on", d):
            add(
                {"voluntary": 2.0, "ordered": 4.0}[r["mode"]] + (2.0 if r["hazard"] == "high" else 0),
                r["announced_on"],
            )
    for r in t["complaints"]:
        if r["enterprise_id"] == eid and known(r, "received_on", d):
            add(1.0 if r["substantiated"] else 0.2, r["received_on"])
    for r in t["licenses"]:
        changed = r["status_changed_on"]
        if (
            r["enterprise_id"] == eid
            and r["status"] == "revoked"
            and known(r, "issued_on", d)
            and changed is not None
            and changed < d
        ):
            add(5.0, changed)
    return total


def lists(rows: list[Row], removals: list[Row], d: date) -> Row:
    """On a list as of D: listed (and recorded) before D, not removed before D, and no removal record
    of it known before D."""
    seen = [r for r in rows if known(r, "listed_on", d)]
    gone = {x["entry_id"] for x in removals if known(x, "removed_on", d)}
    now = [r for r in seen if (r["removed_on"] is None or r["removed_on"] >= d) and r["entry_id"] not in gone]
    abnormal = [r for r in now if r["list"] == "abnormal_operation"]
    return {
        "lists__abnormal_now": int(bool(abnormal)),
        "lists__serious_now": int(any(r["list"] == "serious_dishonest" for r in now)),
        "lists__listed_now": len(now),
        "lists__days_listed": max((age(r, "listed_on", d) for r in now), default=None),
        "lists__abnormal_days_listed": max((age(r, "listed_on", d) for r in abnormal), default=None),
        "lists__listings_1095d": sum(age(r, "listed_on", d) <= 1095 for r in seen),
        "lists__serious_1095d": sum(age(r, "listed_on", d) <= 1095 and r["list"] == "serious_dishonest"
                                    for r in seen),
    }


def commitments(rows: list[Row], d: date) -> Row:
    """A visible commitment's status as of D is its status if that took effect before D, else open."""
    seen = [r for r in rows if known(r, "made_on", d)]

    def status(r: Row) -> str:
        changed = r["status_changed_on"]
        return r["status"] if changed is not None and changed < d else "open"

    opened = [r for r in seen if status(r) == "open"]
    breached = [r for r in seen if status(r) == "breached"]
    recent = [r for r in breached if (d - r["status_changed_on"]).days <= 365]
    ahead = [(r["due_on"] - d).days for r in opened if r["due_on"] is not None and r["due_on"] >= d]
    return {
        "commitments__open": len(opened),
        "commitments__open_overdue": sum(r["due_on"] is not None and r["due_on"] < d for r in opened),
        "commitments__breached": len(breached),
        "commitments__breached_365d": len(recent),
        "commitments__notification_breached_365d": sum(r["kind"] == "notification" for r in recent),
        "commitments__days_to_due": min(ahead, default=None),
    }


def voided(t: Tables, d: date) -> set[tuple[str, str]]:
    """(table, record id) of the records whose void the bureau knew before D."""
    voids = t.get("record_voids", [])
    return {(v["record_table"], v["record_id"]) for v in voids if known(v, "voided_on", d)}


KEYS = {name: spec.key for name, spec in TABLES.items()}


@dataclass
class Case:
    """One enterprise as of D: the tables without the records voided before D, and the features so far
    (a family that sums others, e.g. severity, reads them)."""

    t: Tables
    e: Row
    d: date
    half_life: float
    f: Row

    def mine(self, table: str) -> list[Row]:
        return [r for r in self.t.get(table, []) if r["enterprise_id"] == self.e["enterprise_id"]]


def severity(c: Case) -> Row:
    return {
        "severity__adverse_365d": (
            c.f["inspections__fail_365d"]
            + c.f["sampling__fail_365d"]
            + c.f["penalties__moderate_365d"]
            + c.f["penalties__serious_365d"]
            + c.f["recalls__count_365d"]
            + c.f["licenses__revoked_365d"]
        ),
        "severity__index": severity_index(c.t, c.e["enterprise_id"], c.d, c.half_life),
    }


# One oracle per family of ``features.FAMILIES`` (checked below: a family without one fails the test).
ORACLES: dict[str, Callable[[Case], Row]] = {
    "inspections": lambda c: inspections(c.mine("inspections"), c.t["inspections"], c.d),
    "sampling": lambda c: sampling(c.mine("sampling_tests"), c.d),
    "penalties": lambda c: penalties(c.mine("penalties"), c.t["credit_repairs"], c.d),
    "recalls": lambda c: recalls(c.mine("recalls"), c.d),
    "complaints": lambda c: complaints(c.mine("complaints"), c.d),
    "licenses": lambda c: licenses(c.mine("licenses"), c.e["sector"], c.d),
    "severity": severity,
    "lists": lambda c: lists(c.mine("list_entries"), c.t.get("list_removals", []), c.d),
    "commitments": lambda c: commitments(c.mine("commitments"), c.d),
}


def oracle_features(t: Tables, as_of: list[date], half_life: float = 180.0) -> dict[tuple[str, date], Row]:
    """{(enterprise_id, as_of): {feature: value}} for every enterprise established before each as_of."""
    missing = [family.name for family in FAMILIES if family.name not in ORACLES]
    if missing:
        raise AssertionError(f"no oracle for the feature famil(ies) {missing}: add one to ORACLES")
    out: dict[tuple[str, date], Row] = {}
    everything = t
    for d in sorted(set(as_of)):
        void = voided(everything, d)
        t = {name: [r for r in rows if (name, r.get(KEYS.get(name, ""))) not in void]
             for name, rows in everything.items()}
        alive = [e for e in t["enterprises"] if e["established_on"] < d]
        for e in alive:
            eid = e["enterprise_id"]
            f: Row = {}
            case = Case(t, e, d, half_life, f)
            for family in FAMILIES:
                f.update(ORACLES[family.name](case))
            f["profile__age_days"] = (d - e["established_on"]).days
            f["profile__registered_capital"] = e["registered_capital"]
            f["profile__sector"] = e["sector"]
            f["profile__district"] = e["district"]
            f["profile__status"] = e["status"]
            out[(eid, d)] = f
        for e in alive:
            rep = e["legal_rep_id"]
            others = [
                o
                for o in alive
                if rep is not None and o["legal_rep_id"] == rep and o["enterprise_id"] != e["enterprise_id"]
            ]
            f = out[(e["enterprise_id"], d)]
            f["associations__count"] = len(others)
            f["associations__adverse_365d"] = sum(
                out[(o["enterprise_id"], d)]["severity__adverse_365d"] for o in others
            )
            f["associations__dishonest_active"] = int(
                any(out[(o["enterprise_id"], d)]["penalties__dishonest_active"] for o in others)
            )
            index = sum(out[(o["enterprise_id"], d)]["severity__index"] for o in others)
            f["associations__severity_index"] = index
            f["associations__severity_mean"] = index / len(others) if others else None
    return out
