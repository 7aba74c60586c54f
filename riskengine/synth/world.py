"""The synthetic city's world: districts, sectors, enterprises and their fixed traits, and the
parameters a generation takes (checked before anything is drawn)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from riskengine.core.contract import DISTRICT_NAMES, EARLIEST_EVENT, TABLE_ORDER
from riskengine.core.errors import UsageError
from riskengine.core.ids import make_usccs

DEFAULT_START = date(2019, 1, 1)


DEFAULT_END = date(2025, 12, 31)


FORMATS = ("csv", "parquet")
# The tables a city writes: every source table except the voids and later list removals, which the
# credit office's decided cases create (riskengine cases).
CITY_TABLES: tuple[str, ...] = tuple(t for t in TABLE_ORDER if t not in ("record_voids", "list_removals"))


# Wuhan's 13 districts (GB/T 2260; names from the contract) and their rough share of registered
# market entities.
_DISTRICT_SHARES = {
    "420102": 0.10, "420103": 0.09, "420104": 0.06, "420105": 0.07, "420106": 0.11, "420107": 0.04,
    "420111": 0.16, "420112": 0.09, "420113": 0.015, "420114": 0.06, "420115": 0.09, "420116": 0.08,
    "420117": 0.045,
}
DISTRICTS: dict[str, tuple[str, float]] = {code: (DISTRICT_NAMES[code], share)
                                           for code, share in _DISTRICT_SHARES.items()}


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


@dataclass
class SyntheticCity:
    """A generated city in memory: the contract tables, the ground truth and what was injected."""

    tables: dict[str, pl.DataFrame]
    truth: pl.DataFrame
    inspectors: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


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
