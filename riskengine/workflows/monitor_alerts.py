"""The monitoring report's alerts (act) and watch list: which figures broke a rule of the policy
file's ``[monitor]`` section, each named with its scope and a sentence saying what broke."""

from __future__ import annotations

import math
from typing import Any

from riskengine.core.contract import GRADES
from riskengine.supervision.policy import MonitorPolicy


def alerts_and_watch(
    months: list[dict],
    pooled: dict,
    by_sector: list[dict],
    by_district: list[dict],
    shift: list[dict],
    psi_sector: list[dict],
    calibration: list[dict],
    policy: MonitorPolicy,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts: list[dict[str, Any]] = []
    watch: list[dict[str, Any]] = []
    # Reversals: Bonferroni over every adjacent-pair test made in the report.
    groups = [("month", m["month"], m["reversals"]) for m in months]
    groups += [("sector", s["sector"], s["reversals"]) for s in by_sector]
    groups += [("district", d["district"], d["reversals"]) for d in by_district]
    groups += [("pooled", "all", pooled.get("reversals", []))]
    tests = sum(len(r) for _, _, r in groups)
    for kind, key, revs in groups:
        for r in revs:
            if r["p"] < policy.alpha / max(1, tests):
                alerts.append(
                    {
                        "rule": "grade_order_reversed",
                        "level": "act",
                        "scope": f"{kind}:{key}",
                        "detail": f"{kind} {key}: grade {r['lower']} finds {100 * r['rate_lower']:.1f} "
                        f"per 100, more than {r['higher']} ({100 * r['rate_higher']:.1f}); "
                        f"p = {r['p']:.2g} (Bonferroni over {tests} tests)",
                    }
                )
    trend = pooled.get("trend") or {}
    n_ok = all((pooled["grades"][g]["n_eff"] or 0) >= policy.min_inspections for g in GRADES)
    if n_ok and trend.get("p") is not None and not (trend["p"] < policy.alpha):
        alerts.append(
            {
                "rule": "no_rising_trend",
                "level": "act",
                "scope": "pooled:all",
                "detail": f"pooled over the window, adverse rates do not rise with the grade "
                f"(Cochran–Armitage z = {trend['z']:.2f}, p = {trend['p']:.2g})",
            }
        )
    for m in months:
        value = m.get("psi_score")
        if value is not None and math.isfinite(value):
            entry = {
                "rule": "psi_score",
                "scope": f"month:{m['month']}",
                "detail": f"{m['month']}: score PSI {value:.3f} against the training population",
            }
            if value >= policy.psi_act:
                alerts.append({**entry, "level": "act"})
            elif value >= policy.psi_watch:
                watch.append({**entry, "level": "watch"})
    # One alert per drifting feature over the window (a feature past the threshold month after month
    # is one finding, not twelve).
    drifting: dict[str, list[tuple[str, float]]] = {}
    for m in months:
        for name, v in m.get("psi_features", {}).items():
            if v is not None and math.isfinite(v) and v >= policy.psi_act:
                drifting.setdefault(name, []).append((m["month"], v))
    for name, hits in sorted(drifting.items(), key=lambda kv: -max(v for _, v in kv[1])):
        alerts.append(
            {
                "rule": "psi_features",
                "level": "act",
                "scope": f"feature:{name}",
                "detail": f"feature {name}: PSI ≥ {policy.psi_act} in {len(hits)} of {len(months)} months "
                f"(first {hits[0][0]}, max {max(v for _, v in hits):.2f})",
            }
        )
    for s in psi_sector:
        value = s["psi_score"]
        if value is None or not math.isfinite(value) or s["enterprises"] < policy.min_inspections:
            continue
        entry = {
            "rule": "psi_sector",
            "scope": f"sector:{s['sector']}:{s['month']}",
            "detail": f"{s['month']}: score PSI of sector {s['sector']} {value:.3f} "
            f"({s['enterprises']} enterprises; chance alone reaches {s['chance_watch']:.3f}, "
            f"{s['chance_act']:.3f} over every sector and month)",
        }
        # A small sector's PSI is large by chance: a threshold counts only above that level.
        if value >= max(policy.psi_act, s["chance_act"]):
            alerts.append({**entry, "level": "act"})
        elif value >= max(policy.psi_watch, s["chance_watch"]):
            watch.append({**entry, "level": "watch"})
    for s in shift:
        if s["shifted"]:
            alerts.append(
                {
                    "rule": "sector_shift",
                    "level": "act",
                    "scope": f"sector:{s['sector']}:{s['month']}",
                    "detail": f"{s['month']}: sector {s['sector']} finds {s['adverse_per_100']:.1f} "
                    f"adverse per 100 inspections in two months against "
                    f"{s['baseline_per_100']:.1f} the year before; p = {s['p']:.2g}",
                }
            )
    for c in calibration:
        if c["random_inspections"] < policy.min_inspections or c["predicted"] is None:
            continue
        outside = not (c["ci_low"] <= c["predicted"] <= c["ci_high"])
        gap = abs(c["predicted"] - c["realized"]) / max(c["realized"], 1e-9)
        if outside and gap > policy.calibration_tolerance:
            alerts.append(
                {
                    "rule": "calibration",
                    "level": "act",
                    "scope": f"grade:{c['grade']}",
                    "detail": f"grade {c['grade']}: predicted {100 * c['predicted']:.1f} per 100, "
                    f"realized {100 * c['realized']:.1f} ({100 * c['ci_low']:.1f}–"
                    f"{100 * c['ci_high']:.1f})",
                }
            )
    return alerts, watch


# --- loading from the lake and the store ------------------------------------------------------------
