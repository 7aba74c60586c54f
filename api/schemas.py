"""Request and response bodies of the API (pydantic models; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Grade = Literal["A", "B", "C", "D"]
Role = Literal["inspector", "credit_office", "sector", "admin", "finance"]


def _utc(moment: datetime) -> datetime:
    """The store keeps naive UTC times; answers carry the offset, as ``format: date-time`` requires."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


class ProblemDetails(BaseModel):
    """An error (RFC 9457 problem details)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


class Frequency(BaseModel):
    """Supervision frequency of the enterprise's stratum (sector × served grade)."""

    ratio: float = Field(description="annual share of the stratum drawn for 双随机 random inspections")
    min_per_year: int = Field(description="minimum inspections a year")


class OverrideOut(BaseModel):
    """A credit-office override in force."""

    override_id: int
    grade: Grade
    reason: str
    expires_on: date = Field(description="the override stops applying on this day")
    created_by: str
    created_at: UtcDateTime


class OverrideRecord(OverrideOut):
    """A credit-office override as stored, in force or not, with its withdrawal if any."""

    withdrawn_at: UtcDateTime | None = Field(description="from this moment the override no longer applies")
    withdrawn_by: str | None
    withdraw_reason: str | None


class EnterpriseGrade(BaseModel):
    """The served grade of one enterprise."""

    enterprise_id: str
    name: str | None
    district: str | None
    sector: str | None
    as_of: date
    grade: Grade = Field(description="the served grade: the override's while one is in force")
    scored_grade: Grade = Field(description="the engine's grade (model grade after hard rules)")
    model_grade: Grade = Field(description="the model's grade before hard rules")
    rule: str | None = Field(description="the hard rule that set the scored grade, if any")
    score: int = Field(ge=0, le=1000, description="0–1000, higher is riskier")
    probability: float = Field(description="calibrated probability of an adverse outcome in the horizon")
    frequency: Frequency | None
    model_version: str | None
    override: OverrideOut | None
    disputed: bool = Field(default=False, description="an objection (异议) against the enterprise's "
                                                      "record or grade is open")


class Evidence(BaseModel):
    """One lake record a reason rests on (visible before the grade's as_of, the enterprise's own)."""

    table: str
    record_id: str
    date: date
    text_zh: str
    text_en: str


class Reason(BaseModel):
    code: str
    kind: Literal["own_record", "baseline", "associated", "rule", "other"] = Field(
        description="own_record: what the enterprise did or what was found; baseline: enterprises like "
                    "it; associated: enterprises sharing its legal representative; rule: a hard rule "
                    "or the policy's baseline cap")
    contribution: float | None = Field(description="signed SHAP contribution on the log-odds scale; "
                                                   "null for a hard rule")
    text: str = Field(description="the sentence in the requested language")
    text_zh: str
    text_en: str
    evidence: list[Evidence] = Field(default_factory=list,
                                     description="the records behind an own-record reason (CONTRACT §3)")


class Baseline(BaseModel):
    """The baseline of similar enterprises (sector, age, size, district) in one line."""

    text_zh: str
    text_en: str
    contribution: float | None
    driven: bool | None = Field(default=None, description="the grade rests mainly on the baseline")


class Explanation(BaseModel):
    """Why the enterprise has its grade (CONTRACT §3 "Explanations"; texts also in the requested
    language): own-record reasons first, each with its records."""

    enterprise_id: str
    name: str | None = None
    as_of: date
    language: Literal["zh", "en"]
    grade: Grade
    model_grade: Grade
    score: int
    probability: float
    rule: str | None
    rule_text: str | None
    baseline: Baseline | None
    reasons: list[Reason]
    model_version: str | None
    decomposition: dict[str, Any] | None = Field(
        default=None, description="every reason group's contribution with the base value and raw "
                                  "score (the command line's explanation; null here)")


class HistoryItem(BaseModel):
    as_of: date
    grade: Grade
    model_grade: Grade
    rule: str | None
    score: int
    probability: float
    model_version: str | None


class CreditRecordRead(BaseModel):
    read_at: UtcDateTime
    partner: str | None
    key_id: str | None
    authorization_id: str | None


class History(BaseModel):
    enterprise_id: str
    items: list[HistoryItem]
    overrides: list[OverrideRecord] = Field(
        default_factory=list,
        description="every credit-office override of the enterprise, expired and withdrawn ones too, "
                    "oldest first")
    credit_record_reads: list[CreditRecordRead] = Field(
        default_factory=list,
        description="which finance partner read the enterprise's credit record and when, oldest first")


class PlanPage(BaseModel):
    """One page of the inspection plan (rows are the planner's columns)."""

    period: str
    as_of: date | None
    district: str | None
    total: int
    page: int
    page_size: int
    items: list[dict[str, Any]]
    meta: dict[str, Any]


class EnterpriseSummary(BaseModel):
    enterprise_id: str
    name: str | None
    district: str | None
    sector: str | None
    grade: Grade
    score: int
    frequency: Frequency | None


class SectorPage(BaseModel):
    sector: str
    as_of: date
    items: list[EnterpriseSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class ScoreRequest(BaseModel):
    """What-if scoring: either enterprise ids (scored fresh from the lake at the served as_of) or
    feature rows (``family__feature`` → value; features not given take the catalog's no-event value)."""

    model_config = ConfigDict(extra="forbid")

    enterprise_ids: list[str] | None = None
    features: list[dict[str, float | int | str | bool | None]] | None = None
    as_of: date | None = Field(None, description="default: the as_of of the served grades")


class ScoredItem(BaseModel):
    enterprise_id: str
    probability: float
    score: int
    grade: Grade
    model_grade: Grade
    rule: str | None
    reasons: list[dict[str, Any]]


class ScoreResponse(BaseModel):
    as_of: date
    model_version: str
    items: list[ScoredItem]
    not_found: list[str] = Field(default_factory=list)


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: Grade
    reason: str = Field(min_length=1, max_length=2000, description="required; kept in the audit log")
    expires_on: date = Field(description="first day the override no longer applies (after today)")


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000,
                        description="why the override is withdrawn; required, kept with it and in the "
                                    "audit log")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    districts: list[str] = Field(default_factory=list, max_length=100)
    sector: str | None = None
    name: str | None = Field(None, max_length=200)


class KeyOut(BaseModel):
    key_id: str
    name: str | None
    role: str
    districts: list[str]
    sector: str | None
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the bearer token; shown only in this response")


class ReloadOut(BaseModel):
    as_of: date | None
    grades: int
    model_version: str | None
    loaded_at: UtcDateTime


class Health(BaseModel):
    status: Literal["ok"]
    as_of: date | None
    grades: int
    model_version: str | None


# --- credit record for finance partners (issue 17, CONTRACT §9) ------------------------------------

class AuthorizationIn(BaseModel):
    """An enterprise's signed consent, as the credit office records it."""

    model_config = ConfigDict(extra="forbid")

    authorization_id: str | None = Field(
        None, max_length=64, description="the office's own number for it; generated when absent")
    partner: str = Field(min_length=1, max_length=200,
                         description="the bank or guarantor, exactly as its finance key is named")
    scope: list[Literal["credit_record"]] = Field(default_factory=lambda: ["credit_record"], min_length=1)
    granted_on: date
    expires_on: date
    consent_reference: str = Field(min_length=1, max_length=200,
                                   description="reference of the signed consent (document number)")


class AuthorizationOut(BaseModel):
    authorization_id: str
    enterprise_id: str
    partner: str
    scope: list[str]
    granted_on: date
    expires_on: date
    consent_reference: str
    recorded_by: str
    recorded_at: UtcDateTime
    revoked_at: UtcDateTime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    in_force: bool


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why the authorization ends")


class CreditPenalty(BaseModel):
    case_id: str
    decided_on: date
    severity: str
    fine_cny: float | None
    category: str | None
    influence_until: date


class CreditListEntry(BaseModel):
    entry_id: str
    list: str
    listed_on: date
    removed_on: date | None
    listed: bool


class CreditCommitment(BaseModel):
    commitment_id: str
    kind: str
    made_on: date
    status: Literal["kept", "breached"]
    status_changed_on: date


class CreditRepair(BaseModel):
    repair_id: str
    case_id: str
    repaired_on: date


class GoodStanding(BaseModel):
    in_good_standing: bool
    text_zh: str
    text_en: str


class CreditRecord(BaseModel):
    """An enterprise's credit record for a finance partner (质量信用金融+): no score, no reasons."""

    enterprise_id: str
    name: str | None
    as_of: date
    penalties: list[CreditPenalty] = Field(description="penalties within their influence period")
    lists: list[CreditListEntry]
    commitments: list[CreditCommitment] = Field(description="commitments kept or breached")
    repairs: list[CreditRepair]
    good_standing: GoodStanding
    grade: Grade | None = Field(None, description="the served grade, only where the policy enables it")
    authorization_id: str | None = Field(None, description="the authorization this read relies on")
class CaseOpenIn(BaseModel):
    """A case the credit office opens on an enterprise's behalf (CONTRACT section 5)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["objection", "repair"]
    enterprise_id: str = Field(min_length=1, max_length=64)
    received_on: date
    statement: str | None = Field(default=None, max_length=4000)
    record_table: str | None = Field(default=None, description="objection: the disputed record's table")
    record_id: str | None = Field(default=None, max_length=128)
    grade: bool = Field(default=False, description="objection: the grade itself is disputed")
    penalty: str | None = Field(default=None, max_length=128, description="repair: the penalty case id")
    list_entry: str | None = Field(default=None, max_length=128, description="repair: the list entry id")
    documents: list[str] = Field(default_factory=list, max_length=10)


class CaseStepIn(BaseModel):
    """One step of a case, with its reason (required)."""

    model_config = ConfigDict(extra="forbid")

    step: Literal["accept", "refuse", "uphold", "reject", "approve", "deny"]
    reason: str = Field(min_length=1, max_length=4000)
    on: date | None = Field(default=None, description="the day of the step (default today)")


class CaseDocumentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[str] = Field(min_length=1, max_length=10)


class WarningOut(BaseModel):
    """An early warning (CONTRACT §6) and its acknowledgement, if any."""

    warning_id: str
    enterprise_id: str
    district: str | None
    sector: str | None
    rule: str
    raised_on: date
    text_zh: str | None
    text_en: str | None
    acknowledged_at: UtcDateTime | None = None
    acknowledged_by: str | None = None
    action: str | None = None
    planned_period: str | None = Field(None, description="the plan it became a mandatory item of, if any")


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=2000, description="what was done about the warning")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", max_length=2000)


class WebhookOut(BaseModel):
    subscription_id: str
    url: str
    created_by: str | None
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None
    active: bool


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the HMAC-SHA256 signing secret; shown only in this response")


class DeliveryOut(BaseModel):
    delivery_id: str
    subscription_id: str
    warning_id: str
    attempt: int
    sent_at: UtcDateTime
    status_code: int | None
    ok: bool
    error: str | None
