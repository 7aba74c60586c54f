"""A synthetic city (Wuhan) to train and judge the engine on: enterprises and their event history.

Each enterprise carries a latent monthly risk (a logit): sector, size and age effects, a shared
effect within legal-representative clusters, a persistent individual propensity, a slow random-walk
drift, occasional deterioration shocks, and deterrence after a penalty. Events are drawn from that
risk month by month, vectorised over enterprises (the only Python loop runs over months):
12315 complaints; 双随机 random inspections at a uniform base ratio plus targeted, complaint,
follow-up and licence inspections (so observed outcomes carry selection bias); sampling tests for
product sectors; penalties, recalls, licences with suspensions and revocations, and credit repairs.

``DIR/_truth/risk.parquet`` holds the latent probability that an inspection by an inspector of
average strictness finds a failure (shared/CONTRACT.md, section 1); only evaluation reads it.
``dirty`` adds realistic bad rows so ``riskengine ingest`` can show its quarantine.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from riskengine.core.contract import EARLIEST_EVENT, TABLE_ORDER, TABLES
from riskengine.core.errors import UsageError
from riskengine.core.files import atomic_write
from riskengine.core.ids import make_usccs
from riskengine.core.progress import progress
from riskengine.synth.credit import credit_tables
from riskengine.synth.dirty import inject_dirty

DEFAULT_START = date(2019, 1, 1)
DEFAULT_END = date(2025, 12, 31)
FORMATS = ("csv", "parquet")
# The tables a city writes: every source table except the voids and later list removals, which the
# credit office's decided cases create (riskengine cases).
CITY_TABLES: tuple[str, ...] = tuple(t for t in TABLE_ORDER if t not in ("record_voids", "list_removals"))

# --- The city ------------------------------------------------------------------------------------

# Wuhan's 13 districts (GB/T 2260) and their rough share of registered market entities.
DISTRICTS: dict[str, tuple[str, float]] = {
    "420102": ("江岸区", 0.10),
    "420103": ("江汉区", 0.09),
    "420104": ("硚口区", 0.06),
    "420105": ("汉阳区", 0.07),
    "420106": ("武昌区", 0.11),
    "420107": ("青山区", 0.04),
    "420111": ("洪山区", 0.16),
    "420112": ("东西湖区", 0.09),
    "420113": ("汉南区", 0.015),
    "420114": ("蔡甸区", 0.06),
    "420115": ("江夏区", 0.09),
    "420116": ("黄陂区", 0.08),
    "420117": ("新洲区", 0.045),
}


@dataclass(frozen=True)
class Sector:
    """One sector of the synthetic city and how its enterprises behave."""

    key: str
    share: float  # share of enterprises
    word: str  # the business word in a Chinese enterprise name
    industry_code: str  # GB/T 4754-2017 class
    risk: float  # logit offset of the latent risk
    complaints_per_year: float  # 12315 complaints per enterprise-year at median risk
    sampling_per_year: float = 0.0  # supervisory sampling tests per enterprise-year (product sectors)
    license_kind: str | None = None
    products: tuple[str, ...] = ()


SECTORS: tuple[Sector, ...] = (
    Sector("wire_cable", 0.012, "电缆", "3831", 0.7, 0.03, 0.45, "production_license",
           ("电线电缆", "聚氯乙烯绝缘电线", "交联聚乙烯电力电缆", "控制电缆")),
    Sector("fire_products", 0.008, "消防器材", "3595", 0.8, 0.03, 0.45, "ccc",
           ("手提式灭火器", "点型感烟火灾探测器", "消防水带", "消防应急照明灯具")),
    Sector("food_related", 0.015, "包装制品", "2927", 0.6, 0.04, 0.35, "food_contact",
           ("食品用塑料包装容器", "一次性塑料餐饮具", "食品用纸包装", "不锈钢餐具")),
    Sector("catering", 0.17, "餐饮管理", "6210", 0.5, 0.15, 0.0, "food_business"),
    Sector("food_production", 0.025, "食品", "1499", 0.5, 0.08, 0.50, "food_production",
           ("糕点", "食用植物油", "肉制品", "饮料", "调味品")),
    Sector("retail", 0.30, "商贸", "5299", 0.0, 0.12),
    Sector("wholesale", 0.10, "贸易", "5199", -0.4, 0.04),
    Sector("manufacturing", 0.08, "机械制造", "3499", 0.2, 0.03, 0.08, None,
           ("五金工具", "电动自行车", "家用电器", "儿童玩具")),
    Sector("services", 0.225, "信息咨询", "7239", -0.9, 0.05),
    Sector("construction_materials", 0.035, "建材", "3021", 0.4, 0.03),
    Sector("accommodation", 0.03, "酒店管理", "6110", 0.1, 0.08),
)
SECTOR_KEYS = tuple(s.key for s in SECTORS)

# Characters for trade names (字号); two of them make a name such as 武汉恒泰电缆有限公司.
_NAME_CHARS = tuple("恒泰鑫源华兴盛达宏宇金瑞祥和丰安康隆昌顺德利新天众诚信博远"
                    "瀚辰楚江汉晴川龙凤光明嘉禾中南长城")
_COMPLAINT_CATEGORIES = ("商品质量", "食品安全", "价格收费", "服务质量", "虚假宣传", "合同纠纷", "计量问题")
_PENALTY_CATEGORIES = ("产品质量", "食品安全", "无证生产", "虚假宣传", "计量违法", "价格违法", "标签标识")

# Base logit of the latent risk: an ordinary enterprise fails an average inspection ~7% of the time.
_BASE_LOGIT = -2.8
_RANDOM_RATIO = 0.045  # 双随机 base draw ratio per year, uniform over enterprises
_LICENSE_YEARS = 5  # production licences and CCC certificates run five years
_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Drift:
    """A change injected on purpose: from ``start`` on, the latent risk logit of every enterprise of
    ``sector`` moves by ``shift`` (e.g. +1.5: a sector going bad), so monitoring can be shown to catch it."""

    sector: str
    start: date
    shift: float

    @classmethod
    def parse(cls, text: str) -> Drift:
        """``SECTOR:YYYY-MM-DD:SHIFT``, e.g. ``catering:2025-06-01:1.5``."""
        parts = text.split(":")
        if len(parts) != 3:
            raise UsageError("--drift must be SECTOR:YYYY-MM-DD:SHIFT (e.g. catering:2025-06-01:1.5); "
                             f"got {text!r}")
        sector, day, shift = parts
        if sector not in SECTOR_KEYS:
            raise UsageError(f"--drift sector must be one of {', '.join(SECTOR_KEYS)}; got {sector!r}")
        try:
            start, value = date.fromisoformat(day), float(shift)
        except ValueError:
            raise UsageError(f"--drift needs a date YYYY-MM-DD and a number; got {text!r}") from None
        return cls(sector, start, value)

    def to_dict(self) -> dict[str, Any]:
        return {"sector": self.sector, "start": self.start.isoformat(), "shift": self.shift}


@dataclass
class SyntheticCity:
    """A generated city in memory: the contract tables, the ground truth and what was injected."""

    tables: dict[str, pl.DataFrame]
    truth: pl.DataFrame
    inspectors: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


# --- Validation ----------------------------------------------------------------------------------


def _as_date(value: date | str, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"{name} must be a date YYYY-MM-DD; got {value!r}.") from None


def check_parameters(
    n_enterprises: int, seed: int, start: date | str, end: date | str, fmt: str, dirty: float
) -> tuple[date, date]:
    """Validate the generator's parameters; return (start, end) as dates. Raises UsageError."""
    n = n_enterprises
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise UsageError(f"enterprises must be a positive integer; got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer; got {seed!r}.")
    start_d, end_d = _as_date(start, "start"), _as_date(end, "end")
    if start_d < EARLIEST_EVENT:
        raise UsageError(f"start must be on or after {EARLIEST_EVENT}; got {start_d}.")
    if end_d <= start_d:
        raise UsageError(f"end must be after start ({start_d}); got {end_d}.")
    if end_d > date.today():
        raise UsageError(f"end must not be after today ({date.today()}); got {end_d}.")
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    if isinstance(dirty, bool) or not isinstance(dirty, numbers.Real) or not 0.0 <= dirty < 1.0:
        raise UsageError(f"dirty must be a fraction in [0, 1); got {dirty!r}.")
    return start_d, end_d


# --- Identifiers ---------------------------------------------------------------------------------

# --- Simulation ----------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Events:
    """Event columns collected month by month, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.asarray(v))

    def frame(self, columns: dict[str, Any]) -> dict[str, np.ndarray]:
        """Concatenate; ``columns`` gives an empty-array dtype for each column when there are none."""
        return {k: (np.concatenate(self.parts[k]) if self.parts.get(k) else np.array([], dtype=dt))
                for k, dt in columns.items()}


@dataclass
class _World:
    """Enterprise attributes and static effects."""

    n: int
    ids: np.ndarray
    district: np.ndarray  # index into DISTRICTS
    sector: np.ndarray  # index into SECTORS
    est_day: np.ndarray  # datetime64[D]
    capital: np.ndarray
    rep: np.ndarray  # legal-rep cluster index
    static_logit: np.ndarray


def _choice(rng: np.random.Generator, weights: list[float], n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())


def _make_world(n: int, rng: np.random.Generator, end: date) -> _World:
    """Enterprises with their attributes and the static part of their latent risk."""
    district = _choice(rng, [w for _, w in DISTRICTS.values()], n).astype(np.int8)
    sector = _choice(rng, [s.share for s in SECTORS], n).astype(np.int8)
    # Distinct organisation-code numbers below 8e7 (dirty rows take fresh ones from 8e7 up).
    numbers = rng.choice(80_000_000, size=n, replace=False)
    codes = np.array(list(DISTRICTS))[district]
    ids = make_usccs(codes, numbers)
    end_d = np.datetime64(end, "D")
    # Ages are roughly exponential (many young firms); none founded before 1992 or in the last month.
    age_days = np.minimum(rng.exponential(9 * 365.25, n), (end_d - np.datetime64("1992-01-01")) / _DAY)
    est_day = end_d - np.maximum(age_days, 31).astype("timedelta64[D]")
    # Registered capital in 10k CNY: log-normal, larger for manufacturers.
    sector_capital = np.array([1.0 if s.sampling_per_year or s.key == "construction_materials" else 0.0
                               for s in SECTORS])
    # At least 1 (10,000 CNY), so the size effect (log capital) stays finite.
    capital = np.round(np.maximum(np.exp(rng.normal(3.6 + sector_capital[sector], 1.3, n)), 1.0), 1)
    # Legal representatives: clusters of 1, 2, 3... enterprises (geometric sizes), shuffled.
    sizes = rng.geometric(0.72, n)
    cluster_of = np.repeat(np.arange(n), sizes)[:n]
    rep = rng.permutation(n)[cluster_of]
    rep_effect = rng.normal(0.0, 0.7, n)[rep]
    size_z = (np.log(capital) - 4.0) / 1.4
    static = (
        _BASE_LOGIT
        + np.array([s.risk for s in SECTORS])[sector]
        - 0.4 * size_z
        + rep_effect
        + rng.normal(0.0, 1.0, n)  # persistent individual propensity
    )
    return _World(n, ids, district, sector, est_day, capital, rep, static.astype(np.float32))


def _month_starts(start: date, count: int, offset: int = 0) -> np.ndarray:
    return (np.datetime64(start, "M") + np.arange(offset, offset + count)).astype("datetime64[D]")


def simulate_city(
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    *,
    progress: Callable[[float], None] | None = None,
    drift: Drift | None = None,
) -> tuple[dict[str, pl.DataFrame], np.ndarray, np.ndarray, pl.DataFrame]:
    """Run the monthly simulation. Returns (clean tables, ids, truth matrix n x months, inspectors).

    The truth matrix holds p_fail (float32) for each enterprise and month, NaN where the enterprise
    did not exist; ``truth_frame`` turns it into the contract's long format.
    """
    start_d, end_d = _as_date(start, "start"), _as_date(end, "end")
    injected = drift  # the name ``drift`` is the enterprises' random-walk drift below
    rng = np.random.default_rng(seed)
    w = _make_world(n_enterprises, rng, end_d)
    n = w.n
    month0 = np.datetime64(start_d, "M")
    n_months = int((np.datetime64(end_d, "M") - month0).astype(int)) + 1
    m_start = _month_starts(start_d, n_months + 1)
    first_day, last_day = np.datetime64(start_d, "D"), np.datetime64(end_d, "D")

    sector_of = w.sector
    sec_complaints = np.array([s.complaints_per_year for s in SECTORS])[sector_of] / 12.0
    sec_sampling = np.array([s.sampling_per_year for s in SECTORS])[sector_of] / 12.0
    is_pilot = np.isin(sector_of, [SECTOR_KEYS.index(k) for k in ("wire_cable", "fire_products",
                                                                   "food_related")])
    licensed = np.array([s.license_kind is not None for s in SECTORS])[sector_of]

    # Inspectors: a pool per district (about one per 300 enterprises, at least two); strictness is a
    # logit shift of the fail probability, so a strict inspector fails more at the same latent risk.
    d_share = np.array([s for _, s in DISTRICTS.values()])
    pool = np.maximum(2, np.round(d_share * n / 300)).astype(np.int64)
    pool_start = np.concatenate([[0], np.cumsum(pool)[:-1]])
    strictness = rng.normal(0.0, 0.5, int(pool.sum()))
    strictness -= strictness.mean()
    insp_codes = np.array(list(DISTRICTS))[np.repeat(np.arange(len(pool)), pool)]
    insp_ids = np.char.add(np.char.add(np.char.add("INSP-", insp_codes), "-"),
                           np.char.zfill((np.arange(len(insp_codes)) - pool_start[
                               np.repeat(np.arange(len(pool)), pool)] + 1).astype(str), 3))

    est_month = (w.est_day.astype("datetime64[M]") - month0).astype(np.int32)
    none = n_months + 1  # exit month of an enterprise that does not exit within the period
    exit_month = np.full(n, none, dtype=np.int32)
    exit_kind = np.zeros(n, dtype=np.int8)  # 1 deregistered, 2 revoked
    drift = rng.normal(0.0, 0.3, n).astype(np.float32)
    shock = np.zeros(n, dtype=np.float32)
    shock_target = np.zeros(n, dtype=np.float32)
    deter = np.zeros(n, dtype=np.float32)
    never = -10_000
    last_fail = np.full(n, never, dtype=np.int32)
    last_complaint = np.full(n, never, dtype=np.int32)
    # Visits scheduled for a later month (complaint visits, follow-ups, licence renewals, reinstatements).
    scheduled: dict[str, dict[int, list[np.ndarray]]] = {k: {} for k in ("complaint", "follow_up",
                                                                         "license", "reinstate")}

    def schedule(kind: str, e: np.ndarray, months: np.ndarray | int) -> None:
        months = np.broadcast_to(np.asarray(months), e.shape)
        for m in np.unique(months):
            scheduled[kind].setdefault(int(m), []).append(e[months == m])

    def take(kind: str, t: int) -> np.ndarray:
        parts = scheduled[kind].pop(t, [])
        return np.unique(np.concatenate(parts)) if parts else np.array([], dtype=np.int64)

    # Licences: issued 1-3 months after founding, renewed every five years.
    lic_period = 12 * _LICENSE_YEARS
    first_issue = est_month + rng.integers(1, 4, n)
    lic_due = np.where(licensed, first_issue, -1).astype(np.int32)
    before = licensed & (first_issue <= 0)
    lic_due[before] = first_issue[before] + lic_period * ((-first_issue[before]) // lic_period + 1)
    lic_state = np.zeros(n, dtype=np.int8)  # 0 none, 1 valid, 2 suspended, 3 revoked
    lic_changed = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    lic_state[before] = 1
    lic_idx = np.nonzero(licensed)[0]
    schedule("license", lic_idx, lic_due[lic_idx])

    # Enterprise-major, so each enterprise's months are contiguous when the truth is written.
    truth = np.empty((n, n_months), dtype=np.float32)
    row = np.empty(n, dtype=np.float32)
    insp, samp, pen, rec, comp, lic = (_Events() for _ in range(6))
    # Licences current at the start (issued before it) are part of the source too.
    idx = np.nonzero(before)[0]
    if len(idx):
        issued = (month0 + (lic_due[idx] - lic_period)).astype("datetime64[D]")
        issued = issued + rng.integers(0, 28, len(idx))
        lic.add(e=idx, issued=issued)

    def day_in(t: int, k: int) -> np.ndarray:
        span = int((m_start[t + 1] - m_start[t]) / _DAY)
        return m_start[t] + rng.integers(0, span, k).astype("timedelta64[D]")

    def inspect(e: np.ndarray, t: int, kind: int, logit: np.ndarray, shift: float = 0.0) -> None:
        k = len(e)
        if k == 0:
            return
        d = w.district[e]
        inspector = pool_start[d] + (rng.random(k) * pool[d]).astype(np.int64)
        x = logit[e] + strictness[inspector] + shift
        u = rng.random(k)
        fail = u < _sigmoid(x)
        cond = ~fail & (u < _sigmoid(x + 1.6))
        outcome = np.where(fail, 2, np.where(cond, 1, 0)).astype(np.int8)
        critical = np.where(fail & (rng.random(k) < 0.1 + 0.4 * _sigmoid(x)), rng.integers(1, 3, k), 0)
        serious = np.where(fail & (critical == 0), 1 + rng.poisson(0.4, k),
                           np.where(fail, rng.poisson(0.5, k), 0))
        minor = np.where(cond, 1 + rng.poisson(0.8, k), np.where(fail, rng.poisson(1.5, k), 0))
        insp.add(e=e, day=day_in(t, k), kind=np.full(k, kind, np.int8), inspector=inspector, outcome=outcome,
                 minor=minor, serious=serious, critical=critical)
        f = e[fail]
        last_fail[f] = t
        # A failure is followed up within 1-3 months (most of the time) and often penalised.
        fu = rng.random(len(f)) < 0.75
        schedule("follow_up", f[fu], t + rng.integers(1, 4, int(fu.sum())))
        crit = critical[fail] > 0
        penalise = rng.random(len(f)) < np.where(crit, 0.85, 0.5)
        sev = np.where(crit, np.where(rng.random(len(f)) < 0.45, 2, 1),
                       _choice(rng, [0.45, 0.5, 0.05], len(f)))
        penalty(f[penalise], t, sev[penalise])

    def penalty(e: np.ndarray, t: int, sev: np.ndarray) -> None:
        k = len(e)
        if k == 0:
            return
        decided = day_in(t, k) + rng.integers(15, 90, k).astype("timedelta64[D]")
        fine = np.round(np.exp(rng.normal(np.array([8.3, 10.3, 12.2])[sev], 0.6)), -2)
        dishonest = (sev == 2) & (rng.random(k) < 0.2)
        pen.add(e=e, decided=decided, sev=sev.astype(np.int8), fine=fine, dishonest=dishonest,
                cat=rng.integers(0, len(_PENALTY_CATEGORIES), k))
        # Deterrence: a penalised enterprise behaves better for a while (decays ~8% a month).
        np.add.at(deter, e, np.array([0.3, 0.7, 1.2], dtype=np.float32)[sev])
        # Serious cases put licences at risk: suspension, or revocation for the dishonest.
        at_risk = (sev == 2) & (lic_state[e] == 1)
        ser, dis, when = e[at_risk], dishonest[at_risk], decided[at_risk]
        u = rng.random(len(ser))
        revoke = u < np.where(dis, 0.5, 0.1)
        suspend = ~revoke & (u < 0.45)
        lic_state[ser[revoke]] = 3
        lic_changed[ser[revoke]] = when[revoke]
        lic_due[ser[revoke]] = -1
        lic_state[ser[suspend]] = 2
        lic_changed[ser[suspend]] = when[suspend]
        schedule("reinstate", ser[suspend], t + rng.integers(3, 9, int(suspend.sum())))
        # A few dishonest enterprises lose their business licence (吊销营业执照).
        lose = e[dishonest & (rng.random(k) < 0.1)]
        lose = lose[exit_month[lose] > t + 2]
        exit_month[lose] = t + 2
        exit_kind[lose] = 2

    # Per-enterprise constants of the monthly loop (float32 keeps the 2M-enterprise city fast).
    scale = np.float32(np.exp(-_BASE_LOGIT))
    # Times exp(1.4 (logit - base)): risky enterprises draw many more complaints than the table says.
    complaint_rate = (0.7 * sec_complaints).astype(np.float32)
    age_decay = np.exp(np.minimum(est_month, n_months) / 24.0).astype(np.float32)
    target_base = (0.0008 + 0.004 * is_pilot).astype(np.float32)
    products = np.nonzero(sec_sampling > 0)[0]
    product_rate = sec_sampling[products].astype(np.float32)
    random_p = np.float32(_RANDOM_RATIO / 12)
    revoke_rate = np.float32(0.0003) * scale
    # An injected drift: the month it starts (months since the start) and the enterprises it moves.
    drift_month = (int((np.datetime64(injected.start, "M") - month0).astype(int)) if injected is not None
                   else n_months + 1)
    drifting = sector_of == SECTOR_KEYS.index(injected.sector) if injected is not None else None
    logit = np.empty(n, dtype=np.float32)
    ex = np.empty(n, dtype=np.float32)

    for t in range(n_months):
        # Latent logit: static effects + young-firm effect (decays over ~2 years) + drift + shocks
        # - deterrence.
        np.multiply(age_decay, np.float32(0.9 * np.exp(-t / 24.0)), out=logit)
        np.minimum(logit, np.float32(0.9), out=logit)
        logit += w.static_logit
        logit += drift
        logit += shock
        logit -= deter
        if drifting is not None and t >= drift_month:
            logit[drifting] += np.float32(injected.shift)  # type: ignore[union-attr]
        np.exp(logit, out=ex)
        np.divide(ex, ex + 1.0, out=row)
        exists = (est_month <= t) & (exit_month >= t)
        row[~exists] = np.nan
        truth[:, t] = row
        alive = (est_month < t) & (exit_month > t)

        # Complaints: Poisson with a rate rising steeply with the risk. u < rate is necessary for at
        # least one complaint (1 - e^-rate <= rate), so the exact test runs on those candidates only.
        lam = complaint_rate * np.exp(np.float32(1.4) * (logit - np.float32(_BASE_LOGIT)))
        u = rng.random(n, dtype=np.float32)
        cand = np.nonzero(alive & (u < lam))[0]
        hit = cand[u[cand] < -np.expm1(-np.minimum(lam[cand], 3.0))]
        k = 1 + rng.poisson(np.minimum(lam[hit], 3.0) / 2)
        e = np.repeat(hit, k)
        subst = rng.random(len(e)) < 0.2 + 0.6 * _sigmoid(logit[e])
        comp.add(e=e, day=day_in(t, len(e)), subst=subst,
                 cat=rng.integers(0, len(_COMPLAINT_CATEGORIES), len(e)))
        last_complaint[e[subst]] = t
        visit = rng.random(len(e)) < np.where(subst, 0.4, 0.08)
        schedule("complaint", np.unique(e[visit]), t + 1)
        minor_pen = np.unique(e[subst & (rng.random(len(e)) < 0.04)])
        penalty(minor_pen, t, np.zeros(len(minor_pen), dtype=np.int64))

        # Inspections: 双随机 draws at a uniform ratio; targeted ones follow earlier failures and
        # complaints and sector campaigns on the pilot sectors (selection bias); then complaint visits,
        # follow-ups of failures and licence inspections.
        u = rng.random(n, dtype=np.float32)
        inspect(np.nonzero(alive & (u < random_p))[0], t, 0, logit)
        cand = np.nonzero(alive & (u >= random_p) & (u < random_p + target_base + 0.04))[0]
        target_p = (random_p + target_base[cand] + 0.03 * (last_fail[cand] >= t - 12)
                    + 0.01 * (last_complaint[cand] >= t - 3))
        inspect(cand[u[cand] < target_p], t, 1, logit)
        e = take("complaint", t)
        inspect(e[alive[e]], t, 2, logit)
        # A follow-up checks rectification, so it finds less than a fresh inspection.
        e = take("follow_up", t)
        inspect(e[alive[e]], t, 3, logit, shift=-0.8)
        e = take("reinstate", t)
        e = e[lic_state[e] == 2]
        lic_state[e] = 1
        lic_changed[e] = day_in(t, len(e))
        due = take("license", t)
        due = due[alive[due] & (lic_due[due] == t)]
        lic.add(e=due, issued=day_in(t, len(due)))
        lic_state[due] = np.where(lic_state[due] == 2, 2, 1)
        lic_due[due] = t + lic_period
        schedule("license", due, t + lic_period)
        inspect(due, t, 4, logit)

        # Supervisory sampling of products (监督抽查).
        u = rng.random(len(products), dtype=np.float32)
        e = products[alive[products] & (u < product_rate)]
        fail = rng.random(len(e)) < _sigmoid(logit[e] - 0.2)
        hazard = np.where(fail, _choice(rng, [0.45, 0.4, 0.15], len(e)), -1)
        samp.add(e=e, day=day_in(t, len(e)), fail=fail, hazard=hazard,
                 product=rng.integers(0, 4, len(e)))
        fe, fh = e[fail], hazard[fail]
        last_fail[fe] = t
        penalise = rng.random(len(fe)) < 0.6
        sev = np.where(fh == 2, 2, np.where(fh == 1, 1, _choice(rng, [0.6, 0.4], len(fe))))
        penalty(fe[penalise], t, sev[penalise])
        ordered = rng.random(len(fe)) < np.array([0.02, 0.1, 0.35])[fh]
        u = rng.random(len(products), dtype=np.float32)
        vol = products[alive[products] & (u < 0.0004 * scale * ex[products])]
        ro = fe[ordered]
        rec.add(e=np.concatenate([ro, vol]), day=day_in(t, len(ro) + len(vol)),
                mode=np.concatenate([np.ones(len(ro), np.int8), np.zeros(len(vol), np.int8)]),
                hazard=np.concatenate([fh[ordered], _choice(rng, [0.5, 0.4, 0.1], len(vol))]))

        # Exits: deregistration (more among young firms) and revocation of risky dormant ones; one
        # uniform draw decides both (deregistration below its rate, revocation just above it).
        u = rng.random(n, dtype=np.float32)
        cand = np.nonzero(alive & (u < 0.005 + revoke_rate * ex))[0]
        cand = cand[exit_month[cand] == none]
        dereg_p = np.where(est_month[cand] > t - 36, 0.005, 0.0025)
        dereg = cand[u[cand] < dereg_p]
        revoke = cand[(u[cand] >= dereg_p) & (u[cand] < dereg_p + revoke_rate * ex[cand])]
        exit_month[dereg] = t
        exit_kind[dereg] = 1
        exit_month[revoke] = t
        exit_kind[revoke] = 2

        # The latent risk moves: slow mean-reverting drift, deterioration shocks, decaying deterrence.
        drift *= np.float32(0.985)
        drift += np.float32(0.05) * rng.standard_normal(n, dtype=np.float32)
        new_shock = np.nonzero(rng.random(n, dtype=np.float32) < 0.002)[0]
        shock_target[new_shock] += rng.uniform(1.0, 2.5, len(new_shock)).astype(np.float32)
        shock += np.float32(0.2) * (shock_target - shock)
        shock_target *= np.float32(0.96)
        deter *= np.float32(0.92)
        if progress is not None:
            progress(1)

    tables = _assemble(w, rng, first_day, last_day, month0, n_months, insp, samp, pen, rec,
                       comp, lic, insp_ids, exit_month, exit_kind, lic_state, lic_changed)
    credit = credit_tables(tables, w.ids, truth, start_d, end_d, seed)
    tables.update({name: _conform(name, frame, first_day, last_day) for name, frame in credit.items()})
    inspectors = pl.DataFrame({"inspector_id": insp_ids.astype(str),
                               "district": insp_codes.astype(str), "strictness": strictness})
    return tables, w.ids, truth, inspectors


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


def _truth_block(ids: np.ndarray, truth: np.ndarray, start: date, rows: slice
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids of the block, row index into them, month as days since epoch, p_fail), months existing only."""
    block = truth[rows]
    n, m = block.shape
    months = _month_starts(start, m).astype(np.int32)
    flat = block.ravel()
    keep = ~np.isnan(flat)
    ent = np.repeat(np.arange(n, dtype=np.int32), m)[keep]
    return ids[rows], ent, np.tile(months, n)[keep], flat[keep].astype(np.float64)


def truth_frame(ids: np.ndarray, truth: np.ndarray, start: date | str = DEFAULT_START,
                rows: slice = slice(None)) -> pl.DataFrame:
    """The ground truth in the contract's long format (enterprise_id, month, p_fail) for ``rows``.

    ``truth`` is the enterprises x months matrix of ``simulate_city`` (NaN where none existed).
    """
    block_ids, ent, months, p = _truth_block(ids, truth, _as_date(start, "start"), rows)
    return pl.DataFrame({
        "enterprise_id": pl.Series(block_ids).gather(ent),
        "month": pl.Series(months).cast(pl.Date),
        "p_fail": p,
    })


def generate_tables(
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    dirty: float = 0.0,
) -> dict[str, pl.DataFrame]:
    """The city's contract tables in memory (with dirty rows added when ``dirty`` > 0)."""
    return generate_city_frames(n_enterprises, seed, start, end, dirty=dirty).tables


def generate_city_frames(
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    *,
    dirty: float = 0.0,
    fmt: str = "csv",
    drift: Drift | None = None,
) -> SyntheticCity:
    """The whole city in memory: tables, truth (long format), inspectors and a summary."""
    start_d, end_d = check_parameters(n_enterprises, seed, start, end, fmt, dirty)
    tables, ids, truth, inspectors = simulate_city(n_enterprises, seed, start_d, end_d, drift=drift)
    summary = _summary(n_enterprises, seed, start_d, end_d, fmt, dirty, tables)
    summary["drift"] = drift.to_dict() if drift is not None else None
    if dirty > 0:

        tables, injected = inject_dirty(tables, dirty, seed, allow_text_dates=fmt == "csv")
        summary["injected"] = injected
        summary["rows"] = {name: frame.height for name, frame in tables.items()}
    return SyntheticCity(tables, truth_frame(ids, truth, start_d), inspectors, summary)


def _summary(n: int, seed: int, start: date, end: date, fmt: str, dirty: float,
             tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    counts = {name: tables[name].height for name in CITY_TABLES}
    return {
        "enterprises": n, "seed": seed, "start": start.isoformat(), "end": end.isoformat(),
        "format": fmt, "dirty": dirty,
        "events": {k: v for k, v in counts.items() if k != "enterprises"},
        "rows": dict(counts),
        "injected": {},
    }


# --- Writing -------------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write_table(frame: pl.DataFrame, out: Path, name: str, fmt: str) -> Path:
    path = out / f"{name}.{fmt}"
    if fmt == "csv":
        atomic_write(path, lambda p: frame.write_csv(p))
    else:
        atomic_write(path, lambda p: frame.write_parquet(p))
    # A stale file of the other format would make the source ambiguous.
    (out / f"{name}.{'parquet' if fmt == 'csv' else 'csv'}").unlink(missing_ok=True)
    return path


def _write_truth(path: Path, ids: np.ndarray, truth: np.ndarray, start: date,
                 advance: Callable[[float], None] | None = None, chunk: int = 250_000) -> int:
    """Stream the truth matrix to Parquet in enterprise chunks (2M x 84 months does not fit as a frame).

    Rows are ordered by enterprise then month. enterprise_id goes in as an Arrow dictionary (no string
    copy per row) and is stored without the Arrow schema, so readers see a plain string column; p_fail
    is not dictionary-encoded (every value differs).
    """

    schema = pa.schema([("enterprise_id", pa.dictionary(pa.int32(), pa.string())), ("month", pa.date32()),
                        ("p_fail", pa.float64())])
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        with pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=["enterprise_id", "month"],
                              store_schema=False, dictionary_pagesize_limit=1 << 26) as writer:
            for lo in range(0, len(ids), chunk):
                block_ids, ent, months, p = _truth_block(ids, truth, start, slice(lo, lo + chunk))
                rows += len(p)
                writer.write_table(pa.table({
                    "enterprise_id": pa.DictionaryArray.from_arrays(ent, pa.array(block_ids, pa.string())),
                    "month": pa.array(months, pa.int32()).cast(pa.date32()),
                    "p_fail": pa.array(p),
                }, schema=schema))
                if advance is not None:
                    advance(min(chunk, len(ids) - lo))

    atomic_write(path, write)
    return rows


def generate_city(
    out: Path,
    n_enterprises: int,
    seed: int,
    start: date | str = DEFAULT_START,
    end: date | str = DEFAULT_END,
    fmt: str = "csv",
    dirty: float = 0.0,
    drift: Drift | None = None,
) -> dict[str, Any]:
    """Write a synthetic city as a source folder: ``out/<table>.<fmt>`` and ``out/_truth/``.

    Returns the summary (rows per table, event counts, injected bad rows by kind); the same summary
    is written to ``out/_truth/summary.json``.
    """

    start_d, end_d = check_parameters(n_enterprises, seed, start, end, fmt, dirty)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "_truth").mkdir(exist_ok=True)
    n_months = (end_d.year - start_d.year) * 12 + end_d.month - start_d.month + 1
    with progress("simulating months", total=n_months) as advance:
        tables, ids, truth, inspectors = simulate_city(n_enterprises, seed, start_d, end_d, progress=advance,
                                                       drift=drift)
    summary = _summary(n_enterprises, seed, start_d, end_d, fmt, dirty, tables)
    summary["drift"] = drift.to_dict() if drift is not None else None
    if dirty > 0:

        tables, summary["injected"] = inject_dirty(tables, dirty, seed, allow_text_dates=fmt == "csv")
        summary["rows"] = {name: frame.height for name, frame in tables.items()}
    with progress("writing tables", total=len(tables)) as advance:
        for name in CITY_TABLES:
            _write_table(tables[name], out, name, fmt)
            advance(1)
    del tables
    with progress("writing ground truth", total=len(ids)) as advance:
        summary["truth_rows"] = _write_truth(out / "_truth" / "risk.parquet", ids, truth, start_d, advance)
    atomic_write(out / "_truth" / "inspectors.parquet", lambda p: inspectors.write_parquet(p))
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    atomic_write(out / "_truth" / "summary.json", lambda p: _write_text(p, text))
    return summary
