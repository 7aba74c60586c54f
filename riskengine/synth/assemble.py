"""Events to tables: ids, late ``recorded_on`` dates, and each contract table's rows in its schema."""

from __future__ import annotations

import numpy as np
import polars as pl

from riskengine.core.contract import TABLES
from riskengine.synth.world import (
    _COMPLAINT_CATEGORIES,
    _DAY,
    _LICENSE_YEARS,
    _NAME_CHARS,
    _PENALTY_CATEGORIES,
    DISTRICTS,
    SECTOR_KEYS,
    SECTORS,
    _Events,
    _World,
)


def _ids(prefix: str, days: np.ndarray) -> pl.Series:
    """Sequential ids like ``INS-2023-00000042`` (rows already sorted by date)."""
    years = days.astype("datetime64[Y]").astype(int) + 1970
    seq = np.arange(1, len(days) + 1)
    return pl.DataFrame({"y": years, "s": seq}).select(
        pl.format(prefix + "-{}-{}", pl.col("y"), pl.col("s").cast(pl.String).str.zfill(8))).to_series()


def _recorded(rng: np.random.Generator, days: np.ndarray, late_share: float, late_max: int) -> np.ndarray:
    """The day a record entered the bureau's systems: same or next days, or weeks later for a share."""
    k = len(days)
    lag = np.where(rng.random(k) < late_share, rng.integers(7, late_max, k), rng.integers(0, 3, k))
    return days + lag.astype("timedelta64[D]")


def _sorted(cols: dict[str, np.ndarray], by: str) -> dict[str, np.ndarray]:
    order = np.lexsort((cols["e"], cols[by]))
    return {k: v[order] for k, v in cols.items()}


def _assemble(w: _World, rng: np.random.Generator, first_day: np.datetime64, last_day: np.datetime64,
              month0: np.datetime64, n_months: int, insp: _Events, samp: _Events, pen: _Events,
              rec: _Events, comp: _Events, lic: _Events, insp_ids: np.ndarray,
              exit_month: np.ndarray, exit_kind: np.ndarray, lic_state: np.ndarray,
              lic_changed: np.ndarray) -> dict[str, pl.DataFrame]:
    """Turn the collected event arrays into contract-typed tables."""
    ids = pl.Series(w.ids)
    i64, d64, b, i8 = np.int64, "datetime64[D]", np.bool_, np.int8
    tables: dict[str, pl.DataFrame] = {}

    # Enterprises: status at the end of the period.
    exited = np.where(exit_month < n_months, exit_kind, 0)
    status = np.where(exited == 1, 1, np.where(exited == 2, 2, 0))
    status = np.where((status == 0) & (rng.random(w.n) < 0.004), 3, status)
    names = pl.DataFrame({
        "a": pl.Series(_NAME_CHARS).gather(rng.integers(0, len(_NAME_CHARS), w.n)),
        "b": pl.Series(_NAME_CHARS).gather(rng.integers(0, len(_NAME_CHARS), w.n)),
        "s": pl.Series([s.word for s in SECTORS]).gather(w.sector.astype(np.int64)),
    }).select(pl.concat_str([pl.lit("武汉"), "a", "b", "s", pl.lit("有限公司")])).to_series()
    tables["enterprises"] = pl.DataFrame({
        "enterprise_id": ids,
        "name": names,
        "district": pl.Series(list(DISTRICTS)).gather(w.district.astype(np.int64)),
        "sector": pl.Series(SECTOR_KEYS).gather(w.sector.astype(np.int64)),
        "industry_code": pl.Series([s.industry_code for s in SECTORS]).gather(w.sector.astype(np.int64)),
        "established_on": w.est_day,
        "registered_capital": w.capital,
        "legal_rep_id": pl.DataFrame({"r": w.rep}).select(
            pl.format("LR{}", pl.col("r").cast(pl.String).str.zfill(8))).to_series(),
        "status": pl.Series(["active", "deregistered", "revoked", "suspended"]).gather(status),
    })

    c = _sorted(insp.frame({"e": i64, "day": d64, "kind": i8, "inspector": i64, "outcome": i8,
                            "minor": i64, "serious": i64, "critical": i64}), "day")
    tables["inspections"] = pl.DataFrame({
        "inspection_id": _ids("INS", c["day"]),
        "enterprise_id": ids.gather(c["e"]),
        "inspected_on": c["day"],
        "kind": pl.Series(["random", "targeted", "complaint", "follow_up", "license"]).gather(c["kind"]),
        "inspector_id": pl.Series(insp_ids.astype(str)).gather(c["inspector"]),
        "outcome": pl.Series(["pass", "conditional", "fail"]).gather(c["outcome"]),
        "findings_minor": c["minor"], "findings_serious": c["serious"], "findings_critical": c["critical"],
        "recorded_on": _recorded(rng, c["day"], 0.03, 60),
    })

    c = _sorted(samp.frame({"e": i64, "day": d64, "fail": b, "hazard": i64, "product": i64}), "day")
    products = np.array([(list(s.products) + [""] * 4)[:4] for s in SECTORS])
    tables["sampling_tests"] = pl.DataFrame({
        "test_id": _ids("SMP", c["day"]),
        "enterprise_id": ids.gather(c["e"]),
        "sampled_on": c["day"],
        "product": products[w.sector[c["e"]], c["product"]] if len(c["e"]) else np.array([], dtype=str),
        "result": np.where(c["fail"], "fail", "pass"),
        # Index -1 (a passed test) picks the trailing None: only failures carry a hazard.
        "hazard": pl.Series(np.array(["low", "medium", "high", None], dtype=object)[c["hazard"]].tolist(),
                            dtype=pl.String),
        "recorded_on": _recorded(rng, c["day"], 0.05, 40),
    }, schema_overrides={"product": pl.String, "result": pl.String, "hazard": pl.String})

    # Penalties are decided weeks after the failure; a third enter the system late. Records not yet
    # decided or entered by the end of the period are not in the source.
    c = _sorted(pen.frame({"e": i64, "decided": d64, "sev": i8, "fine": np.float64, "dishonest": b,
                           "cat": i64}), "decided")
    rec_on = _recorded(rng, c["decided"], 0.35, 180)
    keep = rec_on <= last_day
    c = {k: v[keep] for k, v in c.items()}
    tables["penalties"] = pl.DataFrame({
        "case_id": _ids("PEN", c["decided"]),
        "enterprise_id": ids.gather(c["e"]),
        "decided_on": c["decided"],
        "severity": pl.Series(["minor", "moderate", "serious"]).gather(c["sev"]),
        "fine_cny": c["fine"],
        "category": pl.Series(_PENALTY_CATEGORIES).gather(c["cat"]),
        "dishonest_list": c["dishonest"],
        "recorded_on": rec_on[keep],
    })

    c = _sorted(rec.frame({"e": i64, "day": d64, "mode": i8, "hazard": i64}), "day")
    tables["recalls"] = pl.DataFrame({
        "recall_id": _ids("RCL", c["day"]),
        "enterprise_id": ids.gather(c["e"]),
        "announced_on": c["day"],
        "product": products[w.sector[c["e"]], rng.integers(0, 4, len(c["e"]))] if len(c["e"])
        else np.array([], dtype=str),
        "units": np.round(np.exp(rng.normal(7.0, 1.5, len(c["e"])))).astype(np.int64),
        "mode": pl.Series(["voluntary", "ordered"]).gather(c["mode"]),
        "hazard": pl.Series(["low", "medium", "high"]).gather(c["hazard"]),
        "recorded_on": _recorded(rng, c["day"], 0.05, 30),
    }, schema_overrides={"product": pl.String})

    c = _sorted(comp.frame({"e": i64, "day": d64, "subst": b, "cat": i64}), "day")
    tables["complaints"] = pl.DataFrame({
        "complaint_id": _ids("CPL", c["day"]),
        "enterprise_id": ids.gather(c["e"]),
        "received_on": c["day"],
        "category": pl.Series(_COMPLAINT_CATEGORIES).gather(c["cat"]),
        "substantiated": c["subst"],
        "recorded_on": _recorded(rng, c["day"], 0.02, 30),
    })

    # Licences: every issue is a record; an older one expired, the newest carries the final state.
    c = _sorted(lic.frame({"e": i64, "issued": d64}), "issued")
    expires = (c["issued"].astype("datetime64[M]") + 12 * _LICENSE_YEARS).astype(d64) + (
        c["issued"] - c["issued"].astype("datetime64[M]").astype(d64)) - _DAY
    latest = np.zeros(len(c["e"]), dtype=bool)
    if len(c["e"]):
        # The last record per enterprise (rows are sorted by date, so the last occurrence).
        rev = c["e"][::-1]
        _, first_in_rev = np.unique(rev, return_index=True)
        latest[len(rev) - 1 - first_in_rev] = True
    st = np.where(expires <= last_day, 3, 0)  # 0 valid, 1 suspended, 2 revoked, 3 expired
    changed = np.where(expires <= last_day, expires, c["issued"])
    final = lic_state[c["e"]]
    changed_final = lic_changed[c["e"]]
    apply = latest & np.isin(final, [2, 3]) & (changed_final >= c["issued"]) & (changed_final <= last_day)
    st = np.where(apply, np.where(final == 3, 2, 1), st)
    changed = np.where(apply, changed_final, changed)
    reinstated = latest & (final == 1) & ~np.isnat(changed_final) & (changed_final > c["issued"]) & (st == 0)
    changed = np.where(reinstated, changed_final, changed)
    # A deregistered enterprise's licence lapses with it.
    gone = latest & (exit_kind[c["e"]] == 1) & (st == 0)
    gone_day = (month0 + exit_month[c["e"]]).astype(d64)
    st = np.where(gone & (gone_day <= last_day), 3, st)
    changed = np.where(gone & (gone_day <= last_day), np.maximum(gone_day, c["issued"]), changed)
    kinds = [s.license_kind or "" for s in SECTORS]
    lic_numbers = _ids("LIC", c["issued"])
    tables["licenses"] = pl.DataFrame({
        "license_id": lic_numbers,
        "enterprise_id": ids.gather(c["e"]),
        "kind": pl.Series(kinds).gather(w.sector[c["e"]].astype(np.int64)),
        "issued_on": c["issued"],
        "expires_on": expires,
        "status": pl.Series(["valid", "suspended", "revoked", "expired"]).gather(st),
        "status_changed_on": changed,
        "recorded_on": _recorded(rng, c["issued"], 0.02, 30),
    })

    # Credit repairs (SAMR Order 107): moderate cases after >= 3 months, serious after >= 1 year.
    p = tables["penalties"]
    sev = p["severity"].to_numpy()
    k = p.height
    lag_months = np.where(sev == "moderate", rng.integers(3, 13, k), rng.integers(12, 31, k))
    wants = ((sev == "moderate") & (rng.random(k) < 0.3)) | ((sev == "serious") & (rng.random(k) < 0.2))
    decided = p["decided_on"].to_numpy().astype(d64)
    day_of_month = decided - decided.astype("datetime64[M]").astype(d64)
    repaired = ((decided.astype("datetime64[M]") + lag_months).astype(d64) + day_of_month
                + rng.integers(1, 20, k).astype("timedelta64[D]"))
    ok = wants & (repaired <= last_day)
    order = np.argsort(repaired[ok], kind="stable")
    rep_days = repaired[ok][order]
    tables["credit_repairs"] = pl.DataFrame({
        "repair_id": _ids("REP", rep_days),
        "case_id": p["case_id"].filter(pl.Series(ok)).gather(order),
        "repaired_on": rep_days,
        "recorded_on": _recorded(rng, rep_days, 0.05, 30),
    })

    for name, frame in tables.items():
        tables[name] = _conform(name, frame, first_day, last_day)
    return tables


def _conform(name: str, frame: pl.DataFrame, first_day: np.datetime64, last_day: np.datetime64
             ) -> pl.DataFrame:
    """Contract column order and types; events inside [start, end] (licences may predate start)
    and recorded_on never after the end of the period."""
    spec = TABLES[name]
    out = frame.select([pl.col(c).cast(t) for c, t in spec.schema.items()])
    end = pl.lit(last_day.astype(object)).cast(pl.Date)
    if spec.event_date:
        inside = pl.col(spec.event_date) <= end
        if name != "licenses":
            inside &= pl.col(spec.event_date) >= pl.lit(first_day.astype(object)).cast(pl.Date)
        out = out.filter(inside)
    if "recorded_on" in spec.schema:
        out = out.with_columns(pl.min_horizontal("recorded_on", end).alias("recorded_on"))
    return out
