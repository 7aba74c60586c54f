"""Early warnings (issue 14, CONTRACT §6): evaluate the policy's rules point-in-time, store the new
ones, route them to their district, and push them to webhook subscribers.

Every rule reads only what was visible before the as_of day D: a record counts once
``max(event date, recorded_on) < D`` (``features.asof.visible_from``, the one as-of rule), a status
once its ``status_changed_on < D``. Each warning names its *subject* (the licence, the penalty, the
complaint month, the grade run …), so evaluating the same day twice raises nothing new.

Webhook deliveries are JSON POSTs signed with HMAC-SHA256 over ``"{timestamp}.{body}"`` with the
subscription's secret (header ``X-Riskengine-Signature: t=<unix seconds>,v1=<hex>``, as Stripe
does, so a receiver can refuse replays); failures are retried with exponential back-off and every
attempt goes to the delivery log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from features.asof import visible_from
from riskengine.core.config import Settings
from riskengine.core.contract import GRADES
from riskengine.core.signing import sign, verify
from riskengine.core.store import Store
from riskengine.core.store.warnings import Subscription
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import Policy, WarningPolicy, WarningRule

LICENCE_KINDS = {
    "production_license": ("生产许可证", "production licence"),
    "ccc": ("CCC认证证书", "CCC certificate"),
    "food_contact": ("食品相关产品生产许可证", "food-contact licence"),
}
SIGNATURE_HEADER = "X-Riskengine-Signature"


# --- the time rule --------------------------------------------------------------------------------


def visible(frame: pl.LazyFrame, event_date: str, as_of: date) -> pl.LazyFrame:
    """Rows of ``frame`` visible before ``as_of`` (event date and, where present, recorded_on < D)."""
    if "recorded_on" not in frame.collect_schema().names():
        frame = frame.with_columns(pl.lit(None, dtype=pl.Date).alias("recorded_on"))
    return frame.filter(pl.col(event_date).is_not_null() & (visible_from(event_date) < pl.lit(as_of)))


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# --- the rules ------------------------------------------------------------------------------------


def _rows(
    frame: pl.DataFrame,
    rule: str,
    make: Callable[[dict[str, Any]], tuple[str, dict, dict]],
    texts: WarningRule,
    as_of: date,
) -> list[dict[str, Any]]:
    out = []
    for row in frame.iter_rows(named=True):
        subject, zh, en = make(row)
        out.append(
            {
                "enterprise_id": row["enterprise_id"],
                "rule": rule,
                "subject": subject,
                "raised_on": as_of,
                "text_zh": texts.text_zh.format(**zh),
                "text_en": texts.text_en.format(**en),
            }
        )
    return out


def _licence_expiring(tables: Mapping[str, pl.LazyFrame], as_of: date, rule: WarningRule) -> list[dict]:
    lic = tables.get("licenses")
    if lic is None:
        return []
    known = visible(lic, "issued_on", as_of)
    if rule.kinds:
        known = known.filter(pl.col("kind").is_in(rule.kinds))
    ended = (
        pl.col("status").is_in(["suspended", "revoked", "expired"])
        & pl.col("status_changed_on").is_not_null()
        & (pl.col("status_changed_on") < as_of)
    )
    frame = known.filter(~ended).collect()
    # A renewal already on record (a later expiry of the same kind) answers the warning.
    latest = frame.group_by("enterprise_id", "kind").agg(pl.col("expires_on").max().alias("_last"))
    days = (pl.col("expires_on") - pl.lit(as_of)).dt.total_days()
    due = (
        frame.join(latest, on=["enterprise_id", "kind"])
        .filter((pl.col("expires_on") == pl.col("_last")) & days.is_between(0, rule.threshold))
        .with_columns(days.alias("days"))
        .sort("enterprise_id", "license_id")
    )

    def make(r: dict) -> tuple[str, dict, dict]:
        zh, en = LICENCE_KINDS.get(r["kind"], (r["kind"], r["kind"]))
        common = {"license_id": r["license_id"], "expires_on": r["expires_on"].isoformat(), "days": r["days"]}
        return f"licence:{r['license_id']}:{r['expires_on']}", {"kind": zh, **common}, {"kind": en, **common}

    return _rows(due, "licence_expiring", make, rule, as_of)


def _complaint_surge(tables: Mapping[str, pl.LazyFrame], as_of: date, rule: WarningRule) -> list[dict]:
    comp = tables.get("complaints")
    if comp is None:
        return []
    w = max(1, rule.lookback_days)
    start, before = as_of - timedelta(days=w), as_of - timedelta(days=2 * w)
    counts = (
        visible(comp, "received_on", as_of)
        .filter(pl.col("received_on") >= before)
        .group_by("enterprise_id")
        .agg(
            (pl.col("received_on") >= start).sum().alias("recent"),
            (pl.col("received_on") < start).sum().alias("previous"),
        )
        .collect()
    )
    surge = counts.filter(
        (pl.col("recent") >= max(1, rule.min_count))
        & (pl.col("recent") >= rule.threshold * pl.col("previous"))
    ).sort("enterprise_id")

    def make(r: dict) -> tuple[str, dict, dict]:
        fields = {"recent": r["recent"], "previous": r["previous"], "days": w}
        return f"complaints:{as_of:%Y-%m}", fields, fields  # at most one surge warning a month

    return _rows(surge, "complaint_surge", make, rule, as_of)


def _serious_penalty_or_recall(
    tables: Mapping[str, pl.LazyFrame], as_of: date, rule: WarningRule
) -> list[dict]:
    since = as_of - timedelta(days=max(1, rule.lookback_days))
    parts = []
    pen = tables.get("penalties")
    if pen is not None:
        parts.append(
            visible(pen, "decided_on", as_of)
            .filter(pl.col("severity") == "serious")
            .filter(visible_from("decided_on") >= since)
            .select(
                "enterprise_id",
                pl.col("case_id").alias("record_id"),
                pl.col("decided_on").alias("date"),
                pl.lit("penalty").alias("what"),
            )
        )
    rec = tables.get("recalls")
    if rec is not None:
        parts.append(
            visible(rec, "announced_on", as_of)
            .filter(pl.col("mode") == "ordered")
            .filter(visible_from("announced_on") >= since)
            .select(
                "enterprise_id",
                pl.col("recall_id").alias("record_id"),
                pl.col("announced_on").alias("date"),
                pl.lit("recall").alias("what"),
            )
        )
    if not parts:
        return []
    found = pl.concat(parts).collect().sort("enterprise_id", "record_id")
    names = {"penalty": ("严重行政处罚", "serious penalty"), "recall": ("责令召回", "ordered recall")}

    def make(r: dict) -> tuple[str, dict, dict]:
        zh, en = names[r["what"]]
        common = {"record_id": r["record_id"], "date": r["date"].isoformat()}
        return f"{r['what']}:{r['record_id']}", {"what": zh, **common}, {"what": en, **common}

    return _rows(found, "serious_penalty_or_recall", make, rule, as_of)


def _grade_jump(grades: pl.DataFrame | None, as_of: date, rule: WarningRule) -> list[dict]:
    """Grades of the two latest runs on or before D (a run as of X uses only what was known before X)."""
    if grades is None or grades.height == 0:
        return []
    runs = sorted({d for d in grades["as_of"].to_list() if d <= as_of})
    if len(runs) < 2 or (as_of - runs[-1]).days > max(1, rule.lookback_days):
        return []
    old, new = runs[-2], runs[-1]
    rank = {g: i for i, g in enumerate(GRADES)}
    pair = (
        grades.filter(pl.col("as_of") == new)
        .select("enterprise_id", pl.col("grade").alias("new"))
        .join(
            grades.filter(pl.col("as_of") == old).select("enterprise_id", pl.col("grade").alias("old")),
            on="enterprise_id",
        )
    )
    jumped = pair.filter(
        (pl.col("new").replace_strict(rank, default=None) - pl.col("old").replace_strict(rank, default=None))
        >= rule.threshold
    ).sort("enterprise_id")

    def make(r: dict) -> tuple[str, dict, dict]:
        fields = {"old": r["old"], "new": r["new"], "as_of": new.isoformat()}
        return f"grade:{new}", fields, fields

    return _rows(jumped, "grade_jump", make, rule, as_of)


def _abnormal_listing(tables: Mapping[str, pl.LazyFrame], as_of: date, rule: WarningRule) -> list[dict]:
    entries = tables.get("list_entries")
    if entries is None:
        return []
    listed = visible(entries, "listed_on", as_of).filter(pl.col("list") == "abnormal_operation")
    # CONTRACT §2: an entry counts as of D until its removal takes effect (removed_on < D), whether the
    # removal is on the entry or a later record of its own (list_removals) once that is visible.
    listed = listed.filter(pl.col("removed_on").is_null() | (pl.col("removed_on") >= as_of))
    removals = tables.get("list_removals")
    if removals is not None:
        gone = visible(removals, "removed_on", as_of).select("entry_id")
        listed = listed.join(gone, on="entry_id", how="anti")
    listed = listed.collect()
    rows = []
    for r in listed.sort("enterprise_id", "entry_id").iter_rows(named=True):
        # Three years on the abnormal-operation list moves an enterprise to the serious list.
        reaches = _years_later(r["listed_on"], 3)
        days = (reaches - as_of).days
        if 0 <= days <= rule.threshold:
            rows.append({**r, "reaches_on": reaches, "days": days})
    if not rows:
        return []
    frame = pl.DataFrame(rows)

    def make(r: dict) -> tuple[str, dict, dict]:
        fields = {
            "entry_id": r["entry_id"],
            "listed_on": r["listed_on"].isoformat(),
            "reaches_on": r["reaches_on"].isoformat(),
            "days": r["days"],
        }
        return f"listing:{r['entry_id']}", fields, fields

    return _rows(frame, "abnormal_listing_3y", make, rule, as_of)


def _commitments(tables: Mapping[str, pl.LazyFrame], as_of: date, rule: WarningRule) -> list[dict]:
    com = tables.get("commitments")
    if com is None:
        return []
    frame = visible(com, "made_on", as_of).collect()
    if frame.height == 0:
        return []
    changed_known = pl.col("status_changed_on").is_null() | (pl.col("status_changed_on") < as_of)
    # The status as of D: a change that took effect on or after D is not known yet (still open).
    status = pl.when(changed_known).then(pl.col("status")).otherwise(pl.lit("open"))
    days = (pl.col("due_on") - pl.lit(as_of)).dt.total_days()
    since = as_of - timedelta(days=max(1, rule.lookback_days))
    frame = frame.with_columns(status.alias("_status"), days.alias("days"))
    due = frame.filter(
        (pl.col("_status") == "open")
        & pl.col("due_on").is_not_null()
        & pl.col("days").is_between(0, rule.threshold)
    ).with_columns(pl.lit("due").alias("_what"))
    breached = frame.filter(
        (pl.col("_status") == "breached")
        & pl.col("status_changed_on").is_not_null()
        & (pl.col("status_changed_on") >= since)
    ).with_columns(pl.lit("breached").alias("_what"))
    found = pl.concat([due, breached]).sort("enterprise_id", "commitment_id")

    def make(r: dict) -> tuple[str, dict, dict]:
        due_on = r["due_on"].isoformat() if r["due_on"] else "—"
        if r["_what"] == "due":
            zh, en = f"{r['days']}天内到期", f"due in {r['days']} days"
        else:
            zh, en = f"已于{r['status_changed_on']}违反", f"breached on {r['status_changed_on']}"
        common = {"commitment_id": r["commitment_id"], "due_on": due_on, "days": r["days"]}
        return (
            f"commitment:{r['commitment_id']}:{r['_what']}",
            {"status": zh, **common},
            {"status": en, **common},
        )

    return _rows(found, "commitment_due_or_breached", make, rule, as_of)


_LAKE_RULES = {
    "licence_expiring": _licence_expiring,
    "complaint_surge": _complaint_surge,
    "serious_penalty_or_recall": _serious_penalty_or_recall,
    "abnormal_listing_3y": _abnormal_listing,
    "commitment_due_or_breached": _commitments,
}

RAISED_SCHEMA: dict[str, pl.DataType] = {
    "enterprise_id": pl.String(),
    "district": pl.String(),
    "sector": pl.String(),
    "rule": pl.String(),
    "subject": pl.String(),
    "raised_on": pl.Date(),
    "text_zh": pl.String(),
    "text_en": pl.String(),
}


def _routing(tables: Mapping[str, pl.LazyFrame], as_of: date) -> pl.DataFrame:
    """District and sector of every active enterprise established before D (the district from the
    division code inside a USCC where the source gave none, CONTRACT §1)."""
    ent = tables["enterprises"]
    return (
        ent.filter(
            (pl.col("status") == "active")
            & (pl.col("established_on").is_null() | (pl.col("established_on") < as_of))
        )
        .select(
            "enterprise_id",
            pl.coalesce(
                pl.col("district"),
                pl.when(pl.col("enterprise_id").str.len_chars() == 18).then(
                    pl.col("enterprise_id").str.slice(2, 6)
                ),
                pl.lit("unknown"),
            ).alias("district"),
            pl.col("sector").fill_null("unknown"),
        )
        .collect()
    )


def evaluate_warnings(
    tables: Mapping[str, pl.LazyFrame], as_of: date, policy: WarningPolicy, grades: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Every warning the enabled rules raise as of D, routed to the enterprise's district
    (``RAISED_SCHEMA``, sorted by district, rule, enterprise). ``grades`` (enterprise_id, as_of,
    grade; the stored grade runs) feed the grade-jump rule."""
    rows: list[dict[str, Any]] = []
    for rule_id, rule in policy.rules.items():
        if not rule.enabled:
            continue
        if rule_id == "grade_jump":
            rows += _grade_jump(grades, as_of, rule)
        elif rule_id in _LAKE_RULES:
            rows += _LAKE_RULES[rule_id](tables, as_of, rule)
    if not rows:
        return pl.DataFrame(schema=RAISED_SCHEMA)
    raised = pl.DataFrame(
        rows, schema={k: v for k, v in RAISED_SCHEMA.items() if k not in ("district", "sector")}
    )
    return (
        raised.join(_routing(tables, as_of), on="enterprise_id", how="inner")
        .select(list(RAISED_SCHEMA))
        .sort("district", "rule", "enterprise_id", "subject")
    )


# --- webhooks -------------------------------------------------------------------------------------


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now`` (receivers)."""
    return verify(secret, header, body, now=now, tolerance=tolerance_s)


def payload(warning: Mapping[str, Any]) -> bytes:
    """The JSON body of one warning's delivery."""
    keys = ("warning_id", "enterprise_id", "district", "sector", "rule", "raised_on", "text_zh", "text_en")
    body = {
        "event": "warning.raised",
        "warning": {
            k: (warning[k].isoformat() if isinstance(warning[k], date) else warning[k]) for k in keys
        },
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # left for the next run: their subscriber was unreachable in this one
    attempts: int = 0
    failures: list[str] = field(default_factory=list)


def deliver(store: Store, settings: Settings, *, client: Any = None) -> DeliveryReport:
    """POST every warning a subscription has not yet received (new ones and earlier failures), with
    retries and exponential back-off; each attempt is logged. A subscriber still unreachable after a
    warning's last retry gets nothing more this run (its other warnings wait for the next run, instead
    of each paying the whole back-off)."""

    cfg = settings.webhooks
    report = DeliveryReport()
    own = client is None
    http = client or httpx.Client(timeout=cfg.timeout_seconds)

    try:
        for sub in store.webhook_subscriptions(active_only=True):
            pending = store.undelivered_warnings(sub)
            for i, warning in enumerate(pending.iter_rows(named=True)):
                body = payload(warning)
                attempt = 0
                try:
                    for attempt_ctx in Retrying(
                        stop=stop_after_attempt(cfg.attempts),
                        wait=wait_exponential(multiplier=cfg.backoff_seconds, max=cfg.backoff_max_seconds),
                        retry=retry_if_exception_type(_Retry),
                        reraise=True,
                    ):
                        with attempt_ctx:
                            attempt += 1
                            _post_once(http, store, sub, warning["warning_id"], body, attempt)
                    report.sent += 1
                except (_Retry, _Final) as exc:
                    report.failed += 1
                    report.failures.append(f"{sub.url}: {warning['warning_id']}: {exc}")
                    if isinstance(exc, _Retry):
                        report.attempts += attempt
                        report.skipped += pending.height - i - 1
                        break
                report.attempts += attempt
    finally:
        if own:
            http.close()
    return report


class _Retry(Exception):
    """A delivery attempt that may succeed later (network error, 429, 5xx)."""


class _Final(Exception):
    """A delivery the receiver refused (4xx other than 429): not retried."""


def _post_once(
    http: Any, store: Store, sub: Subscription, warning_id: str, body: bytes, attempt: int
) -> None:
    """One POST; logs it; raises ``_Retry`` on a network error, 429 or 5xx, ``_Final`` on other 4xx."""

    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(sub.secret, int(time.time()), body),
        "X-Riskengine-Event": "warning.raised",
        "X-Riskengine-Delivery": f"{warning_id}:{attempt}",
    }
    try:
        response = http.post(sub.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        store.log_webhook_delivery(
            sub.subscription_id, warning_id, attempt, None, False, type(exc).__name__ + f": {exc}"
        )
        raise _Retry(f"{type(exc).__name__}") from exc
    ok = 200 <= response.status_code < 300
    store.log_webhook_delivery(
        sub.subscription_id,
        warning_id,
        attempt,
        response.status_code,
        ok,
        None if ok else f"HTTP {response.status_code}",
    )
    if not ok:
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}")
        raise _Final(f"HTTP {response.status_code} (not retried)")


# --- the command ----------------------------------------------------------------------------------


@dataclass
class WarningRun:
    """What one ``riskengine warnings`` run did."""

    as_of: date
    evaluated: pl.DataFrame  # every warning the rules raise as of D
    new: pl.DataFrame  # those not stored before (with ids)
    delivery: DeliveryReport | None = None

    def by_district(self) -> pl.DataFrame:
        return self.new.group_by("district", "rule").len("warnings").sort("district", "rule")

    def to_json(self) -> list[dict[str, Any]]:
        keys = (
            "warning_id",
            "enterprise_id",
            "district",
            "sector",
            "rule",
            "raised_on",
            "text_zh",
            "text_en",
        )
        return [
            {k: (r[k].isoformat() if isinstance(r[k], date) else r[k]) for k in keys}
            for r in self.new.iter_rows(named=True)
        ]


Evaluator = Callable[[Path, date, WarningPolicy, "pl.DataFrame | None"], pl.DataFrame]
"""(lake, as_of, warning policy, stored grade runs) -> the raised warnings (``RAISED_SCHEMA``)."""


def stored_grade_runs(store: Store, as_of: date, runs: int = 2) -> pl.DataFrame | None:
    """enterprise_id, as_of, grade of the latest ``runs`` grade runs on or before D (None: no store)."""
    dates = [d for d in store.grade_dates() if d <= as_of][-runs:]
    if not dates:
        return None
    return pl.concat([store.latest_grades(d).select("enterprise_id", "as_of", "grade") for d in dates])


def run_warnings(
    lake: Path,
    as_of: date,
    settings: Settings,
    policy: Policy,
    *,
    deliver_webhooks: bool = True,
    http_client: Any = None,
    evaluate: Evaluator | None = None,
) -> WarningRun:
    """Evaluate the rules on the lake as of D, store the new warnings and push them to subscribers.

    ``evaluate`` (default: ``evaluate_warnings`` on the whole lake) is how the rules are evaluated,
    e.g. part by part on a cluster (``riskengine.workflows.cluster.warnings_evaluator``)."""

    store = Store(settings.store_file, lock_timeout=settings.service.store_lock_timeout)
    grades = stored_grade_runs(store, as_of)
    if evaluate is None:
        evaluated = evaluate_warnings(load_tables(Path(lake)), as_of, policy.warnings, grades)
    else:
        evaluated = evaluate(Path(lake), as_of, policy.warnings, grades)
    new = store.add_warnings(evaluated)
    delivery = deliver(store, settings, client=http_client) if deliver_webhooks else None
    return WarningRun(as_of, evaluated, new, delivery)


def overdue_plan_items(settings: Settings, as_of: date, policy: Policy) -> pl.DataFrame:
    """enterprise_id, why, warning_ids: open warnings older than the policy's limit, as mandatory
    items of the plan starting at D (empty without a store)."""
    empty = pl.DataFrame(
        schema={"enterprise_id": pl.String, "why": pl.String, "warning_ids": pl.List(pl.String)}
    )
    if not Path(settings.store_file).exists():
        return empty
    overdue = Store(settings.store_file).overdue_warnings(as_of, policy.warnings.ack_limit_days)
    if overdue.height == 0:
        return empty
    return (
        overdue.sort("raised_on", "warning_id")
        .group_by("enterprise_id", maintain_order=True)
        .agg(
            pl.format(
                "预警未处置（{}，{}）：{} / unacknowledged warning ({}, {}): {}",
                "warning_id",
                "raised_on",
                "text_zh",
                "warning_id",
                "raised_on",
                "text_en",
            )
            .str.join("；")
            .alias("why"),
            pl.col("warning_id").alias("warning_ids"),
        )
    )


def mark_planned(settings: Settings, items: pl.DataFrame, period: str) -> None:
    """Record in the store that these warnings became mandatory items of the plan of ``period``."""
    ids = [w for ws in items["warning_ids"].to_list() for w in ws]
    Store(settings.store_file).mark_warnings_planned(ids, period)
