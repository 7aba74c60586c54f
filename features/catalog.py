"""The feature catalog: every column ``build_features`` returns (besides the keys), described once.

The model uses ``monotone`` for LightGBM's monotone constraints, ``categorical`` to encode,
``nuisance`` + ``neutral`` to neutralise inspector strictness at prediction time (issue 4), and
``text_zh`` / ``text_en`` (``str.format`` templates over ``{value}``) to word SHAP reasons.

Categorical features are plain, stable ``pl.String`` values (not ``pl.Categorical``, whose codes depend
on the order strings were seen); encode them in the model. ``fill`` is the value an enterprise with
no such events gets (0 for counts; None where "no event" has no number, e.g. days since the last).
``point_in_time=False`` marks the one column the lake cannot give as of a past date:
``profile__status`` is the enterprise's *current* status (the enterprises table is a snapshot without
a status date), so training on past snapshots must leave it out (``MODEL_FEATURES`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DType = Literal["int", "float", "str"]


@dataclass(frozen=True)
class FeatureSpec:
    """What one feature column means and how a model may use it."""

    name: str
    family: str
    dtype: DType
    monotone: int  # +1: more of it must never lower risk; -1: never raise it; 0: unconstrained
    text_zh: str
    text_en: str
    categorical: bool = False
    nuisance: bool = False  # describes the supervisor, not the enterprise (issue 4)
    neutral: float | None = None  # value a model substitutes for a nuisance feature
    fill: float | str | None = 0  # value for enterprises with no events of the kind
    point_in_time: bool = True


_SPECS: list[FeatureSpec] = []


def _add(name: str, dtype: DType, monotone: int, zh: str, en: str, **kw: object) -> None:
    family = name.split("__", 1)[0]
    _SPECS.append(FeatureSpec(name, family, dtype, monotone, zh, en, **kw))  # type: ignore[arg-type]


WINDOWS = (90, 365, 1095)
INSPECTION_KINDS = ("random", "targeted", "complaint", "follow_up", "license")
_KIND_ZH = {
    "random": "双随机",
    "targeted": "定向",
    "complaint": "投诉举报",
    "follow_up": "复查",
    "license": "许可",
}

# --- inspections -----------------------------------------------------------------------------------
for w in WINDOWS:
    _add(
        f"inspections__count_{w}d",
        "int",
        0,
        f"近{w}天接受检查{{value:.0f}}次",
        f"{{value:.0f}} inspections in the last {w} days",
    )
    _add(
        f"inspections__fail_{w}d",
        "int",
        1,
        f"近{w}天检查不合格{{value:.0f}}次",
        f"{{value:.0f}} failed inspections in the last {w} days",
    )
    _add(
        f"inspections__conditional_{w}d",
        "int",
        1,
        f"近{w}天检查责令整改{{value:.0f}}次",
        f"{{value:.0f}} inspections passed with conditions in the last {w} days",
    )
    for k in INSPECTION_KINDS:
        _add(
            f"inspections__{k}_{w}d",
            "int",
            0,
            f"近{w}天{_KIND_ZH[k]}检查{{value:.0f}}次",
            f"{{value:.0f}} {k.replace('_', '-')} inspections in the last {w} days",
        )
for w in (365, 1095):
    _add(
        f"inspections__fail_rate_{w}d",
        "float",
        1,
        f"近{w}天检查不合格率{{value:.0%}}",
        f"{{value:.0%}} of inspections failed in the last {w} days",
        fill=None,
    )
    for sev, zh in (("minor", "一般"), ("serious", "严重"), ("critical", "重大")):
        _add(
            f"inspections__findings_{sev}_{w}d",
            "int",
            1,
            f"近{w}天检查发现{zh}问题{{value:.0f}}项",
            f"{{value:.0f}} {sev} findings in inspections of the last {w} days",
        )
_add(
    "inspections__count_ever", "int", 0, "历史累计接受检查{value:.0f}次", "{value:.0f} inspections on record"
)
_add(
    "inspections__fail_ever",
    "int",
    1,
    "历史累计检查不合格{value:.0f}次",
    "{value:.0f} failed inspections on record",
)
_add("inspections__never_inspected", "int", 0, "从未接受过检查", "never inspected", fill=1)
_add(
    "inspections__days_since_last",
    "int",
    0,
    "距上次检查{value:.0f}天",
    "{value:.0f} days since the last inspection",
    fill=None,
)
_add(
    "inspections__days_since_last_fail",
    "int",
    0,
    "距上次检查不合格{value:.0f}天",
    "{value:.0f} days since the last failed inspection",
    fill=None,
)
_add(
    "inspections__last_outcome",
    "str",
    0,
    "最近一次检查结果：{value}",
    "last inspection outcome: {value}",
    categorical=True,
    fill="none",
)
_add(
    "inspections__inspector_strictness_last",
    "float",
    0,
    "最近一次检查人员的严格程度{value:+.2f}",
    "strictness of the last inspector {value:+.2f}",
    nuisance=True,
    neutral=0.0,
    fill=0.0,
)
_add(
    "inspections__inspector_strictness_mean_365d",
    "float",
    0,
    "近365天检查人员平均严格程度{value:+.2f}",
    "mean strictness of inspectors in the last 365 days {value:+.2f}",
    nuisance=True,
    neutral=0.0,
    fill=0.0,
)

for name, zh, en in (
    ("adverse_share", "历次检查发现严重问题的比例（时间加权）{value:.0%}",
     "{value:.0%} of inspections found an adverse outcome (time-weighted)"),
    ("critical_per_inspection", "每次检查平均发现重大问题{value:.2f}项（时间加权）",
     "{value:.2f} critical findings per inspection (time-weighted)"),
    ("serious_per_inspection", "每次检查平均发现严重问题{value:.2f}项（时间加权）",
     "{value:.2f} serious findings per inspection (time-weighted)"),
    ("minor_per_inspection", "每次检查平均发现一般问题{value:.2f}项（时间加权）",
     "{value:.2f} minor findings per inspection (time-weighted)"),
    ("findings_weighted_per_inspection", "每次检查加权问题数{value:.2f}（时间加权）",
     "{value:.2f} weighted findings per inspection (time-weighted)"),
):
    # Exposure-free (features.inspections): what an inspection found on average, not how often one came.
    _add(f"inspections__{name}", "float", 1, zh, en, fill=None)

# --- sampling tests --------------------------------------------------------------------------------
for w in (365, 1095):
    _add(
        f"sampling__tests_{w}d",
        "int",
        0,
        f"近{w}天被抽检{{value:.0f}}次",
        f"{{value:.0f}} sampling tests in the last {w} days",
    )
    _add(
        f"sampling__fail_{w}d",
        "int",
        1,
        f"近{w}天抽检不合格{{value:.0f}}次",
        f"{{value:.0f}} failed sampling tests in the last {w} days",
    )
    _add(
        f"sampling__fail_rate_{w}d",
        "float",
        1,
        f"近{w}天抽检不合格率{{value:.0%}}",
        f"{{value:.0%}} of sampling tests failed in the last {w} days",
        fill=None,
    )
    _add(
        f"sampling__hazard_weighted_fail_{w}d",
        "float",
        1,
        f"近{w}天抽检不合格（按危害加权）{{value:.1f}}",
        f"hazard-weighted failed sampling tests in the last {w} days: {{value:.1f}}",
    )
    _add(
        f"sampling__high_hazard_fail_{w}d",
        "int",
        1,
        f"近{w}天高危害抽检不合格{{value:.0f}}次",
        f"{{value:.0f}} high-hazard failed sampling tests in the last {w} days",
    )

# --- penalties -------------------------------------------------------------------------------------
for sev, zh in (("minor", "轻微"), ("moderate", "一般"), ("serious", "严重")):
    _add(
        f"penalties__{sev}_active",
        "int",
        1,
        f"处于公示期内的{zh}行政处罚{{value:.0f}}件",
        f"{{value:.0f}} {sev} penalties within their influence period",
    )
    _add(
        f"penalties__{sev}_365d",
        "int",
        1,
        f"近365天{zh}行政处罚{{value:.0f}}件",
        f"{{value:.0f}} {sev} penalties decided in the last 365 days",
    )
_add(
    "penalties__active",
    "int",
    1,
    "处于公示期内的行政处罚{value:.0f}件",
    "{value:.0f} penalties within their influence period",
)
_add(
    "penalties__dishonest_active",
    "int",
    1,
    "列入严重违法失信名单",
    "on the serious-violation and dishonesty list",
)
_add(
    "penalties__fine_cny_active",
    "float",
    1,
    "公示期内处罚罚款合计{value:,.0f}元",
    "fines of {value:,.0f} CNY within their influence period",
)
_add(
    "penalties__fine_cny_365d",
    "float",
    1,
    "近365天罚款合计{value:,.0f}元",
    "fines of {value:,.0f} CNY in the last 365 days",
)
_add(
    "penalties__count_1095d",
    "int",
    1,
    "近1095天行政处罚{value:.0f}件",
    "{value:.0f} penalties decided in the last 1095 days",
)
_add(
    "penalties__repaired_1095d",
    "int",
    0,
    "近1095天已完成信用修复的处罚{value:.0f}件",
    "{value:.0f} penalties of the last 1095 days with a completed credit repair",
)

# --- recalls ---------------------------------------------------------------------------------------
for w in (365, 1095):
    _add(
        f"recalls__count_{w}d",
        "int",
        1,
        f"近{w}天产品召回{{value:.0f}}次",
        f"{{value:.0f}} recalls in the last {w} days",
    )
    _add(
        f"recalls__ordered_{w}d",
        "int",
        1,
        f"近{w}天责令召回{{value:.0f}}次",
        f"{{value:.0f}} ordered recalls in the last {w} days",
    )
    _add(
        f"recalls__high_hazard_{w}d",
        "int",
        1,
        f"近{w}天高危害召回{{value:.0f}}次",
        f"{{value:.0f}} high-hazard recalls in the last {w} days",
    )
    _add(
        f"recalls__units_{w}d",
        "int",
        1,
        f"近{w}天召回产品{{value:,.0f}}件",
        f"{{value:,.0f}} units recalled in the last {w} days",
    )

_add(
    "recalls__ordered_high_hazard_365d",
    "int",
    1,
    "近365天被责令召回高危害产品{value:.0f}次",
    "{value:.0f} ordered recalls of high-hazard products in the last 365 days",
)

# --- complaints ------------------------------------------------------------------------------------
for w in (90, 365):
    _add(
        f"complaints__count_{w}d",
        "int",
        1,
        f"近{w}天收到12315投诉举报{{value:.0f}}件",
        f"{{value:.0f}} 12315 complaints in the last {w} days",
    )
_add(
    "complaints__substantiated_365d",
    "int",
    1,
    "近365天查实的投诉举报{value:.0f}件",
    "{value:.0f} substantiated complaints in the last 365 days",
)
_add(
    "complaints__count_1095d",
    "int",
    1,
    "近1095天收到12315投诉举报{value:.0f}件",
    "{value:.0f} 12315 complaints in the last 1095 days",
)
_add(
    "complaints__substantiated_1095d",
    "int",
    1,
    "近1095天查实的投诉举报{value:.0f}件",
    "{value:.0f} substantiated complaints in the last 1095 days",
)
_add(
    "complaints__substantiated_share_365d",
    "float",
    1,
    "近365天投诉举报查实率{value:.0%}",
    "{value:.0%} of complaints in the last 365 days substantiated",
    fill=None,
)
_add(
    "complaints__trend_90d",
    "float",
    0,
    "近90天投诉较此前同期变化{value:+.1f}件",
    "complaints in the last 90 days vs. the 90-day rate of the rest of the year: {value:+.1f}",
)

# --- licences --------------------------------------------------------------------------------------
_add("licenses__valid", "int", 0, "持有有效许可证{value:.0f}张", "{value:.0f} valid licences held")
_add("licenses__valid_production_license", "int", 0, "持有有效生产许可证", "holds a valid production licence")
_add("licenses__valid_ccc", "int", 0, "持有有效CCC认证", "holds a valid CCC certificate")
_add(
    "licenses__required_missing",
    "int",
    1,
    "缺少所属行业必需的有效许可（{value:.0f}项）",
    "lacks {value:.0f} licence kind(s) its sector requires",
)
_add("licenses__suspended", "int", 1, "被暂停的许可证{value:.0f}张", "{value:.0f} suspended licences")
_add("licenses__revoked", "int", 1, "被吊销的许可证{value:.0f}张", "{value:.0f} revoked licences")
_add(
    "licenses__revoked_365d",
    "int",
    1,
    "近365天被吊销许可证{value:.0f}张",
    "{value:.0f} licences revoked in the last 365 days",
)
_add("licenses__expired", "int", 0, "已过期的许可证{value:.0f}张", "{value:.0f} expired licences")
_add(
    "licenses__days_to_expiry",
    "int",
    0,
    "有效许可证{value:.0f}天后到期",
    "a valid licence expires in {value:.0f} days",
    fill=None,
)

# --- profile ---------------------------------------------------------------------------------------
_add("profile__age_days", "int", 0, "成立{value:.0f}天", "established {value:.0f} days ago", fill=None)
_add(
    "profile__registered_capital",
    "float",
    0,
    "注册资本{value:,.0f}万元",
    "registered capital {value:,.0f} (10k CNY)",
    fill=None,
)
_add("profile__sector", "str", 0, "行业：{value}", "sector: {value}", categorical=True, fill=None)
_add("profile__district", "str", 0, "所在区：{value}", "district: {value}", categorical=True, fill=None)
_add(
    "profile__status",
    "str",
    0,
    "登记状态：{value}",
    "registration status: {value}",
    categorical=True,
    fill=None,
    point_in_time=False,
)

# --- associations ----------------------------------------------------------------------------------
_add(
    "associations__count",
    "int",
    0,
    "同一法定代表人的关联企业{value:.0f}家",
    "{value:.0f} enterprises share its legal representative",
)
_add(
    "associations__adverse_365d",
    "int",
    1,
    "关联企业近365天不良事件{value:.0f}起",
    "{value:.0f} adverse events at associated enterprises in the last 365 days",
)
_add(
    "associations__dishonest_active",
    "int",
    1,
    "有关联企业列入严重违法失信名单",
    "an associated enterprise is on the dishonesty list",
)
_add(
    "associations__severity_index",
    "float",
    1,
    "关联企业时间衰减的违法违规严重程度指数合计{value:.1f}",
    "time-decayed severity index of associated enterprises, summed: {value:.1f}",
)
_add(
    "associations__severity_mean",
    "float",
    1,
    "关联企业平均时间衰减的违法违规严重程度指数{value:.1f}",
    "mean time-decayed severity index of associated enterprises: {value:.1f}",
    fill=None,
)

# --- severity --------------------------------------------------------------------------------------
_add(
    "severity__adverse_365d",
    "int",
    1,
    "近365天不良事件{value:.0f}起",
    "{value:.0f} adverse events in the last 365 days",
)
_add(
    "severity__index",
    "float",
    1,
    "时间衰减的违法违规严重程度指数{value:.1f}",
    "time-decayed severity index {value:.1f}",
)

# --- credit lists (CONTRACT section 1: list_entries) ------------------------------------------------
_add("lists__abnormal_now", "int", 1, "列入经营异常名录", "on the abnormal-operation list")
_add("lists__serious_now", "int", 1, "列入严重违法失信名单", "on the serious-dishonesty list")
_add("lists__listed_now", "int", 1, "当前在列名录{value:.0f}条", "{value:.0f} list entries in force")
_add("lists__days_listed", "int", 0, "已在名录中{value:.0f}天", "listed for {value:.0f} days", fill=None)
_add(
    "lists__abnormal_days_listed",
    "int",
    0,
    "列入经营异常名录已{value:.0f}天",
    "on the abnormal-operation list for {value:.0f} days",
    fill=None,
)
_add(
    "lists__listings_1095d",
    "int",
    1,
    "近1095天被列入名录{value:.0f}次",
    "listed {value:.0f} times in the last 1095 days",
)
_add(
    "lists__serious_1095d",
    "int",
    1,
    "近1095天被列入严重违法失信名单{value:.0f}次",
    "put on the serious-dishonesty list {value:.0f} times in the last 1095 days",
)

# --- credit commitments (CONTRACT section 1: commitments) -------------------------------------------
_add("commitments__open", "int", 0, "未到期的信用承诺{value:.0f}项", "{value:.0f} open credit commitments")
_add(
    "commitments__open_overdue",
    "int",
    1,
    "已过履约期限仍未确认履约的承诺{value:.0f}项",
    "{value:.0f} commitments past their due day and not confirmed kept",
)
_add("commitments__breached", "int", 1, "违背信用承诺{value:.0f}项",
     "{value:.0f} credit commitments breached")
_add(
    "commitments__breached_365d",
    "int",
    1,
    "近365天违背信用承诺{value:.0f}项",
    "{value:.0f} credit commitments breached in the last 365 days",
)
_add(
    "commitments__notification_breached_365d",
    "int",
    1,
    "近365天违背告知承诺{value:.0f}项",
    "{value:.0f} notification commitments (告知承诺) breached in the last 365 days",
)
_add(
    "commitments__days_to_due",
    "int",
    0,
    "信用承诺{value:.0f}天后到期",
    "a credit commitment falls due in {value:.0f} days",
    fill=None,
)


FEATURES: dict[str, FeatureSpec] = {s.name: s for s in _SPECS}
"""Every feature column, in output order."""

MODEL_FEATURES: list[str] = [n for n, s in FEATURES.items() if s.point_in_time]
"""The columns fit for training on past snapshots (everything but the current-status snapshot)."""
