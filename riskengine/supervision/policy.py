"""The supervision policy: sector x grade -> annual random-inspection ratio and minimum inspections.

A policy is a TOML file (the built-in default is ``riskengine/data/policy.toml``), validated on load
with errors that name the entry, e.g. ``policy.toml: sectors.wire_cable.D.ratio must be > 0 and
≤ 1; got 0``. No grade may have a ratio of 0 (shared/CONTRACT.md section 3): every enterprise keeps
a chance of being drawn, so that no one is exempt and random outcomes stay a fair training sample.
Its ``version`` (explicit, or a hash of the file's content) is recorded with every plan.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskengine.core.config import get_settings
from riskengine.core.contract import GRADES, PILOT_SECTORS
from riskengine.core.errors import ConfigError, UsageError

DEFAULT_SECTOR = "default"
# The planning period is one calendar month, so a stratum cannot require more than 12 a year.
MAX_MIN_PER_YEAR = 12
_SECTOR_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Frequency(BaseModel):
    """One sector x grade entry of the file."""

    model_config = ConfigDict(extra="forbid")

    ratio: float
    min_per_year: int = 0

    @field_validator("ratio", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> object:
        if not _is_number(value) or not (0 < float(value) <= 1):  # type: ignore[arg-type]
            raise ValueError("must be > 0 and ≤ 1")
        return value

    @field_validator("min_per_year", mode="before")
    @classmethod
    def _min_per_year(cls, value: object) -> object:
        if not isinstance(value, int | float) or isinstance(value, bool) or not float(value).is_integer() \
                or not 0 <= value <= MAX_MIN_PER_YEAR:
            raise ValueError(f"must be an integer from 0 to {MAX_MIN_PER_YEAR}")
        return int(value)


class _GradeTable(BaseModel):
    """All four grades (the ``default`` section)."""

    model_config = ConfigDict(extra="forbid")

    A: _Frequency
    B: _Frequency
    C: _Frequency
    D: _Frequency


class _PartialGradeTable(BaseModel):
    """A sector section: the grades it changes; the others come from ``default``."""

    model_config = ConfigDict(extra="forbid")

    A: _Frequency | None = None
    B: _Frequency | None = None
    C: _Frequency | None = None
    D: _Frequency | None = None


class _GradeShares(BaseModel):
    """``[grades]``: the share of the graded population each grade should hold (issue 11)."""

    model_config = ConfigDict(extra="forbid")

    A: float
    B: float
    C: float
    D: float

    @field_validator("A", "B", "C", "D", mode="before")
    @classmethod
    def _share(cls, value: object) -> object:
        if not _is_number(value) or not (0.02 <= float(value) <= 0.6):  # type: ignore[arg-type]
            raise ValueError("must be a share from 0.02 to 0.6")
        return value


class _Grades(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shares: _GradeShares

    @field_validator("shares")
    @classmethod
    def _sum(cls, value: _GradeShares) -> _GradeShares:
        total = value.A + value.B + value.C + value.D
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"must add up to 1; they add up to {total:g}")
        if not value.A + value.B > value.C + value.D:
            raise ValueError("must put most enterprises in A and B (SAMR: most are low or general risk)")
        return value


# Early-warning rules (issue 14): the ids the engine knows, each with the fields its text may use.
WARNING_RULES: dict[str, tuple[str, ...]] = {
    "licence_expiring": ("kind", "license_id", "expires_on", "days"),
    "complaint_surge": ("recent", "previous", "days"),
    "serious_penalty_or_recall": ("what", "record_id", "date"),
    "grade_jump": ("old", "new", "as_of"),
    "abnormal_listing_3y": ("entry_id", "listed_on", "reaches_on", "days"),
    "commitment_due_or_breached": ("commitment_id", "status", "due_on", "days"),
}


class WarningRule(BaseModel):
    """One early-warning rule: its threshold (days, ratio or grade steps, see the policy file), an
    optional minimum count and look-back, the kinds it covers, and its text in Chinese and English
    (``str.format`` templates over the rule's fields)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float
    text_zh: str
    text_en: str
    enabled: bool = True
    min_count: int = 0
    lookback_days: int = 30
    kinds: list[str] = []

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: object) -> object:
        if not _is_number(value) or float(value) <= 0:  # type: ignore[arg-type]
            raise ValueError("must be a number > 0")
        return value

    @field_validator("lookback_days", "min_count", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("must be an integer ≥ 0")
        return value


class WarningPolicy(BaseModel):
    """The early-warning section: rules by id, and after how many days an unacknowledged warning
    becomes a mandatory item of the next monthly plan."""

    model_config = ConfigDict(extra="forbid")

    ack_limit_days: int = 10
    rules: dict[str, WarningRule] = {}

    @field_validator("ack_limit_days", mode="before")
    @classmethod
    def _limit(cls, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError("must be a whole number of days ≥ 1")
        return value


class MonitorPolicy(BaseModel):
    """When the monitoring report raises alerts (issue 14)."""

    model_config = ConfigDict(extra="forbid")

    psi_watch: float = 0.1  # population stability index: watch from here ...
    psi_act: float = 0.25  # ... act from here
    alpha: float = 0.05  # family-wise error of the monotonicity and sector-shift tests
    min_inspections: int = 20  # a grade (or sector) with fewer random inspections is not tested
    calibration_tolerance: float = 0.5  # relative gap predicted vs realized before an alert

    @field_validator("psi_watch", "psi_act", "alpha", "calibration_tolerance", mode="before")
    @classmethod
    def _positive(cls, value: object) -> object:
        if not _is_number(value) or float(value) <= 0:  # type: ignore[arg-type]
            raise ValueError("must be a number > 0")
        return value


class _BaselineCap(BaseModel):
    """How far the baseline of similar enterprises alone may move a grade (issue 18)."""

    model_config = ConfigDict(extra="forbid")

    max_grade: Literal["A", "B", "C", "D"]


class SharingRules(BaseModel):
    """What leaves the engine (issue 17, CONTRACT §9): risk grades are internal unless enabled here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Some provinces push risk classes to their provincial credit platform; the default keeps them in.
    grades_to_platform: bool = False
    # Whether a finance partner's credit record (质量信用金融+) carries the served grade.
    grade_to_finance: bool = False


class PublicationRules(BaseModel):
    """How long a record stays published on the bureau's website (事后: 违法行为记录及发布)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Months a penalty stays published from its decision, by severity.
    minor_months: int = Field(default=3, ge=0, le=120)
    moderate_months: int = Field(default=12, ge=0, le=120)
    serious_months: int = Field(default=36, ge=0, le=120)
    # A minor penalty with no fine (a warning) or a fine up to this amount was decided by the simple
    # procedure (Administrative Penalty Law art. 51: legal persons up to 3,000 CNY) and is not published.
    simple_procedure_max_fine_cny: float = Field(default=3000.0, ge=0)

    def months(self, severity: str) -> int:
        return int(getattr(self, f"{severity}_months"))


class CaseDeadlines(BaseModel):
    """The credit office's statutory clocks (CONTRACT section 5), in working days of the mainland
    calendar, and the minimum listing period before a list entry may be repaired."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objection_accept_days: int = Field(default=2, ge=0, description="accept or refuse an objection")
    objection_decide_days: int = Field(default=10, ge=0, description="decide, from acceptance")
    repair_accept_days: int = Field(default=3, ge=0, description="accept or refuse a repair application")
    repair_decide_days: int = Field(default=5, ge=0, description="decide, from a complete application")
    # Months a list entry must have been listed before its repair (SAMR Order 44 art. 16: one year on
    # the serious list; an abnormal-operation entry leaves as soon as it is rectified).
    list_min_months: dict[str, int] = Field(
        default_factory=lambda: {"abnormal_operation": 0, "serious_dishonest": 12})
    # The credit office's attention list: an abnormal listing reaching three years (when it moves to
    # the serious list) within this many days; an open commitment falling due within this many days.
    attention_abnormal_days: int = Field(default=60, ge=0)
    attention_commitment_days: int = Field(default=30, ge=0)


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    grades: _Grades | None = None
    default: _GradeTable
    sectors: dict[str, _PartialGradeTable] = {}
    warnings: WarningPolicy | None = None
    monitor: MonitorPolicy | None = None
    baseline_cap: _BaselineCap | None = None
    sharing: SharingRules = SharingRules()
    publication: PublicationRules = PublicationRules()
    cases: CaseDeadlines = CaseDeadlines()

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError("must be a non-empty string")
        return value


@dataclass(frozen=True)
class Policy:
    """A validated policy. ``rates[(sector, grade)] = (ratio, min_per_year)``; sector ``default``."""

    version: str
    digest: str
    source: str
    rates: dict[tuple[str, str], tuple[float, int]] = field(repr=False)
    sharing: SharingRules = field(default_factory=SharingRules)
    publication: PublicationRules = field(default_factory=PublicationRules)
    cases: CaseDeadlines = field(default_factory=CaseDeadlines)
    # The highest grade an enterprise without an adverse record or a hard rule may get (None: no cap).
    baseline_cap: str | None = None
    # The share of the graded population per grade (``[grades] shares``); None: Settings' fixed edges.
    grade_shares: dict[str, float] | None = None
    warnings: WarningPolicy = field(default_factory=WarningPolicy, repr=False)
    monitor: MonitorPolicy = field(default_factory=MonitorPolicy, repr=False)

    @property
    def sectors(self) -> list[str]:
        """The sectors with their own entries (ordinary sectors use ``default``)."""
        return sorted({s for s, _ in self.rates if s != DEFAULT_SECTOR})

    def frequency(self, sector: str, grade: str) -> tuple[float, int]:
        """(annual random-inspection ratio, minimum inspections a year) for an enterprise."""
        if grade not in GRADES:
            raise UsageError(f"unknown grade {grade!r}; expected one of {', '.join(GRADES)}")
        return self.rates.get((sector, grade)) or self.rates[(DEFAULT_SECTOR, grade)]

    def frequency_table(self) -> pl.DataFrame:
        """Every configured stratum: sector (``default`` for ordinary sectors), grade, ratio, minimum."""
        rows = [
            {"sector": s, "grade": g, "ratio": ratio, "min_per_year": minimum}
            for s in [DEFAULT_SECTOR, *self.sectors]
            for g in GRADES
            for ratio, minimum in [self.frequency(s, g)]
        ]
        return pl.DataFrame(rows, schema={"sector": pl.String, "grade": pl.String, "ratio": pl.Float64,
                                          "min_per_year": pl.Int64})

    def assign(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` (with ``sector`` and ``grade``) plus its stratum's ``ratio`` and ``min_per_year``."""
        table = self.frequency_table()
        specific = table.filter(pl.col("sector") != DEFAULT_SECTOR)
        default = table.filter(pl.col("sector") == DEFAULT_SECTOR).drop("sector")
        out = (
            frame.join(specific, on=["sector", "grade"], how="left")
            .join(default, on="grade", how="left", suffix="_default")
            .with_columns(
                pl.coalesce("ratio", "ratio_default").alias("ratio"),
                pl.coalesce("min_per_year", "min_per_year_default").alias("min_per_year"),
            )
            .drop("ratio_default", "min_per_year_default")
        )
        unknown = out.filter(pl.col("ratio").is_null())
        if unknown.height:
            bad = unknown.get_column("grade").unique().to_list()
            raise UsageError(f"grades frame has unknown grade(s) {bad}; expected one of {', '.join(GRADES)}")
        return out


def _describe(error: Any) -> str:
    """One pydantic error as ``entry rule; got value``."""
    loc = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"{loc} is missing"
    if kind == "extra_forbidden":
        return f"{loc} is not a known entry"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{loc} must be a table, e.g. {{ ratio = 0.1, min_per_year = 0 }}; got {error.get('input')!r}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{loc} {message}; got {error.get('input')!r}" if loc else f"{message}"


def parse_policy(text: str, name: str = "policy.toml") -> Policy:
    """Validate the text of a policy file; ``name`` is used in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    try:
        parsed = _PolicyFile.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        raise ConfigError(f"{name}: " + f"\n{name}: ".join(problems)) from None
    problems = []
    for sector, entry in parsed.sectors.items():
        if sector == DEFAULT_SECTOR or not _SECTOR_KEY.match(sector):
            problems.append(f"sectors.{sector} is not a sector key (lower_snake, not 'default')")
        if sector in PILOT_SECTORS:
            d = entry.D or parsed.default.D
            if d.min_per_year < 1:
                # Issue 5: in the pilot sectors every D enterprise is inspected at least once a year.
                problems.append(f"sectors.{sector}.D.min_per_year must be ≥ 1 in a pilot sector "
                                f"(every D enterprise inspected at least once a year); got {d.min_per_year}")
    if parsed.warnings is not None:
        problems += _warning_problems(parsed.warnings)
    if parsed.monitor is not None and parsed.monitor.psi_act < parsed.monitor.psi_watch:
        problems.append(f"monitor.psi_act must be ≥ monitor.psi_watch; got {parsed.monitor.psi_act}")
    if problems:
        raise ConfigError(f"{name}: " + f"\n{name}: ".join(problems))
    rates: dict[tuple[str, str], tuple[float, int]] = {}
    for grade in GRADES:
        d = getattr(parsed.default, grade)
        rates[(DEFAULT_SECTOR, grade)] = (float(d.ratio), int(d.min_per_year))
        for sector, entry in parsed.sectors.items():
            e = getattr(entry, grade) or d
            rates[(sector, grade)] = (float(e.ratio), int(e.min_per_year))
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    shares = None if parsed.grades is None else {g: float(getattr(parsed.grades.shares, g)) for g in GRADES}
    warnings, monitor = parsed.warnings, parsed.monitor
    if (warnings is None or monitor is None) and name != _BUILT_IN:
        # A policy file without these sections keeps the built-in rules and alert thresholds.
        built_in = parse_policy(default_policy_text(), _BUILT_IN)
        warnings, monitor = warnings or built_in.warnings, monitor or built_in.monitor
    return Policy(version=parsed.version or digest[:19], digest=digest, source=name, rates=rates,
                  sharing=parsed.sharing, publication=parsed.publication, cases=parsed.cases,
                  baseline_cap=parsed.baseline_cap.max_grade if parsed.baseline_cap else None,
                  grade_shares=shares,
                  warnings=warnings or WarningPolicy(), monitor=monitor or MonitorPolicy())


_BUILT_IN = "policy.toml (built-in)"


def _warning_problems(section: WarningPolicy) -> list[str]:
    """Unknown rule ids and text templates that name a field the rule does not have."""
    problems = []
    for rule_id, rule in section.rules.items():
        fields = WARNING_RULES.get(rule_id)
        if fields is None:
            known = ", ".join(WARNING_RULES)
            problems.append(f"warnings.rules.{rule_id} is not a known rule (known: {known})")
            continue
        for lang in ("text_zh", "text_en"):
            try:
                getattr(rule, lang).format(**{f: "x" for f in fields})
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"warnings.rules.{rule_id}.{lang} uses {exc} which is not one of "
                                f"{{{'}, {'.join(fields)}}}")
    return problems


def default_policy_text() -> str:
    """The built-in policy file's text."""
    return resources.files("riskengine").joinpath("data/policy.toml").read_text(encoding="utf-8")


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, else in ``Settings.policy_path``, else the built-in default."""
    if path is None:
        path = get_settings().policy_path
    if path is None:
        policy = parse_policy(default_policy_text(), _BUILT_IN)
        return replace(policy, source="built-in")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the policy file is not UTF-8 text") from None
    policy = parse_policy(text, path.name)
    return replace(policy, source=str(path))
