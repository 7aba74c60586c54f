"""The monitoring report as one self-contained HTML file (plots embedded as base64 PNG), Chinese
first with English beside, for a head of office to open offline."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
from jinja2 import Environment
from markupsafe import Markup

from riskengine.core.contract import GRADES, district_label, sector_label

_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei")
GRADE_COLOURS = {"A": "#2e7d32", "B": "#9e9d24", "C": "#ef6c00", "D": "#c62828"}


def _font() -> str | None:
    """A font that draws Chinese (the bundled Noto Sans CJK if present), else None (English labels)."""
    from matplotlib import font_manager  # noqa: PLC0415 - heavy

    try:
        import noto_cjk_sans_otc  # noqa: PLC0415 - heavy

        path = str(noto_cjk_sans_otc.FONT_PATH)
        if not any(f.fname == path for f in font_manager.fontManager.ttflist):
            font_manager.fontManager.addfont(path)
    except (ImportError, OSError, RuntimeError, ValueError):
        pass
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in _CJK_FONTS if n in installed), None)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - heavy

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(zh: str, en: str, cjk: bool) -> str:
    return f"{zh} / {en}" if cjk else en


def figures(report: dict[str, Any]) -> dict[str, str]:
    """The report's plots as base64 PNG, by name."""
    import matplotlib  # noqa: PLC0415 - heavy

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - heavy

    font = _font()
    cjk = font is not None
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        plt.rcParams["axes.unicode_minus"] = False
    out: dict[str, str] = {}
    months = [m["month"] for m in report["months"]]

    # 1. Adverse per 100 by grade: pooled with intervals, and month by month.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 2]})
    pooled = report["pooled"]["grades"]
    for i, g in enumerate(GRADES):
        cell = pooled[g]
        if cell["adverse_per_100"] is None:
            continue
        y, lo, hi = cell["adverse_per_100"], cell["ci_low"], cell["ci_high"]
        ax1.bar(i, y, color=GRADE_COLOURS[g])
        ax1.errorbar(i, y, yerr=[[y - lo], [hi - y]], color="black", capsize=5)
        ax1.text(i, hi, f"n={cell['random_inspections']}", ha="center", va="bottom", fontsize=8)
    ax1.set_xticks(range(4), list(GRADES))
    ax1.set_ylabel(_label("每百次随机检查不良结果", "adverse per 100 random inspections", cjk))
    ax1.set_title(_label("窗口合计（95%置信区间）", "window pooled (95% CI)", cjk), fontsize=10)
    for g in GRADES:
        ys = [m["grades"][g]["adverse_per_100"] for m in report["months"]]
        xs = [i for i, y in enumerate(ys) if y is not None]
        ax2.plot(xs, [ys[i] for i in xs], marker="o", color=GRADE_COLOURS[g], label=g)
    ax2.set_xticks(range(len(months)), months, rotation=45, fontsize=8)
    ax2.set_title(_label("逐月", "month by month", cjk), fontsize=10)
    ax2.legend(title=_label("等级", "grade", cjk), fontsize=8)
    out["rates"] = _png(fig)

    # 2. PSI of the score, overall and per sector.
    fig, ax = plt.subplots(figsize=(11, 3.4))
    ys = [m["psi_score"] for m in report["months"]]
    ax.plot(
        range(len(months)),
        [y if y is not None else math.nan for y in ys],
        marker="o",
        color="black",
        linewidth=2,
        label=_label("全部", "all", cjk),
    )
    sectors = sorted({s["sector"] for s in report["psi_by_sector"]})
    # The five sectors furthest above what chance alone gives at their size (a small sector's PSI is
    # large by chance, so the raw PSI would always show the smallest sectors).
    worst = sorted(
        sectors,
        key=lambda s: (
            -max(
                (r["psi_score"] or 0) - (r.get("chance_watch") or 0)
                for r in report["psi_by_sector"]
                if r["sector"] == s
            )
        ),
    )[:5]
    for s in worst:
        by_month = {r["month"]: r["psi_score"] for r in report["psi_by_sector"] if r["sector"] == s}
        ax.plot(
            range(len(months)),
            [by_month.get(m) or math.nan for m in months],
            marker=".",
            label=sector_label(s, "zh" if cjk else "en"),
        )
    ax.axhline(0.1, color="#ef6c00", linestyle="--", linewidth=1)
    ax.axhline(0.25, color="#c62828", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(months)), months, rotation=45, fontsize=8)
    ax.set_ylabel("PSI")
    ax.set_title(
        _label("评分稳定性（相对训练人群）", "score stability vs the training population", cjk), fontsize=10
    )
    ax.legend(fontsize=8, ncol=3)
    out["psi"] = _png(fig)

    # 3. Migration over the window.
    window = report["migration"].get("window")
    if window:
        matrix = np.array([[row[g] for g in GRADES] for row in window["matrix"]], dtype=float)
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i in range(4):
            for j in range(4):
                ax.text(
                    j,
                    i,
                    f"{int(matrix[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if shares[i, j] > 0.5 else "black",
                )
        ax.set_xticks(range(4), list(GRADES))
        ax.set_yticks(range(4), list(GRADES))
        ax.set_xlabel(f"{window['to_run']}")
        ax.set_ylabel(f"{window['from_run']}")
        ax.set_title(_label("等级迁移", "grade migration", cjk), fontsize=10)
        out["migration"] = _png(fig)

    # 4. Calibration.
    if report["calibration"]:
        fig, ax = plt.subplots(figsize=(4.6, 3.6))
        for c in report["calibration"]:
            if c["realized"] is None or c["predicted"] is None:
                continue
            x, y = 100 * c["predicted"], 100 * c["realized"]
            ax.errorbar(
                x,
                y,
                yerr=[[y - 100 * c["ci_low"]], [100 * c["ci_high"] - y]],
                fmt="o",
                color=GRADE_COLOURS[c["grade"]],
                capsize=4,
                label=c["grade"],
            )
        top = max(
            [100 * (c["ci_high"] or 0) for c in report["calibration"]]
            + [100 * (c["predicted"] or 0) for c in report["calibration"]]
            + [1]
        )
        ax.plot([0, top], [0, top], color="grey", linestyle=":")
        ax.set_xlabel(_label("预测（每百）", "predicted per 100", cjk))
        ax.set_ylabel(_label("实际（每百）", "realized per 100", cjk))
        ax.legend(fontsize=8)
        ax.set_title(_label("校准", "calibration", cjk), fontsize=10)
        out["calibration"] = _png(fig)
    return out


_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>信用风险分级监测报告 / Grade monitoring report — {{ r.as_of }}</title>
<style>
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#222;max-width:1180px}
h1{font-size:22px} h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
.en{color:#666;font-size:.9em} table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right} th{background:#f4f4f4}
td.l,th.l{text-align:left} .act{color:#b71c1c;font-weight:bold} .watch{color:#e65100} .ok{color:#2e7d32}
img{max-width:100%} .small{font-size:12px;color:#555}
</style></head><body>
<h1>信用风险分级监测报告 <span class="en">Grade monitoring report</span></h1>
<p>截至 {{ r.as_of }}（使用此前可见的记录），监测 {{ r.months|length }} 个月；冠军模型版本 {{ r.model_version or "—" }}。
<span class="en">As of {{ r.as_of }} (records visible before it), {{ r.months|length }} months; champion version
{{ r.model_version or "—" }}.</span></p>

<h2>告警 <span class="en">Alerts</span></h2>
{% if r.alerts %}<ul>{% for a in r.alerts %}<li class="act">{{ a.rule }} — {{ a.detail }}</li>{% endfor %}</ul>
{% else %}<p class="ok">无告警 <span class="en">no alerts</span></p>{% endif %}
{% if r.watch %}<p>关注 <span class="en">watch</span>:</p><ul>{% for a in r.watch %}<li class="watch">{{ a.rule }} — {{ a.detail }}</li>{% endfor %}</ul>{% endif %}

<h2>各等级随机检查发现率 <span class="en">Adverse outcomes per 100 random (双随机) inspections, by grade</span></h2>
<img src="data:image/png;base64,{{ figs.rates }}" alt="rates by grade">
<table><tr><th class="l">月份 month</th>{% for g in grades %}<th>{{ g }}: n</th><th>{{ g }}: 每百 per 100 (95% CI)</th>{% endfor %}<th>A&lt;B&lt;C&lt;D</th><th>PSI</th></tr>
{% for m in r.months %}<tr><td class="l">{{ m.month }}</td>{% for g in grades %}{% set c = m.grades[g] %}<td>{{ c.random_inspections }}</td>
<td>{% if c.adverse_per_100 is not none %}{{ "%.1f"|format(c.adverse_per_100) }} ({{ "%.1f"|format(c.ci_low) }}–{{ "%.1f"|format(c.ci_high) }}){% else %}—{% endif %}</td>{% endfor %}
<td>{{ "是 yes" if m.monotone else "否 no" }}</td><td>{{ "%.3f"|format(m.psi_score) if m.psi_score is not none else "—" }}</td></tr>{% endfor %}
<tr><th class="l">合计 pooled</th>{% for g in grades %}{% set c = r.pooled.grades[g] %}<th>{{ c.random_inspections }}</th><th>{% if c.adverse_per_100 is not none %}{{ "%.1f"|format(c.adverse_per_100) }} ({{ "%.1f"|format(c.ci_low) }}–{{ "%.1f"|format(c.ci_high) }}){% else %}—{% endif %}</th>{% endfor %}
<th>{{ "是 yes" if r.pooled.monotone else "否 no" }}</th><th></th></tr></table>
<p class="small">趋势检验（Cochran–Armitage）z = {{ "%.2f"|format(r.pooled.trend.z) if r.pooled.trend.z is not none else "—" }}，单侧 p = {{ "%.2g"|format(r.pooled.trend.p) if r.pooled.trend.p is not none else "—" }}。
样本不足 {{ min_n }} 次的等级不做逆序检验，避免误报。<span class="en">Trend test z and one-sided p; grades with fewer than
{{ min_n }} inspections are not tested for reversals (no false alarms on small samples). Rates are weighted by the plans'
inclusion probabilities where a stored plan recorded them (Hájek/Horvitz–Thompson), Wilson intervals on the effective size.</span></p>

<h2>试点行业 <span class="en">Pilot sectors</span></h2>
{{ cells(r.by_sector, "sector") }}
<h2>各区 <span class="en">Districts</span></h2>
{{ cells(r.by_district, "district") }}

<h2>漂移 <span class="en">Drift</span></h2>
<img src="data:image/png;base64,{{ figs.psi }}" alt="PSI">
<p class="small">PSI 0.1 关注、0.25 处置。<span class="en">PSI 0.1 watch, 0.25 act.</span></p>
{% if shifted %}<p>行业发现率偏移 <span class="en">sector shifts (all inspections, two months vs the year before)</span>:</p>
<table><tr><th class="l">月份 month</th><th class="l">行业 sector</th><th>检查 inspections</th><th>每百 per 100</th><th>基线 baseline</th><th>p</th></tr>
{% for s in shifted %}<tr><td class="l">{{ s.month }}</td><td class="l">{{ s.sector }}</td><td>{{ s.inspections }}</td><td>{{ "%.1f"|format(s.adverse_per_100) }}</td><td>{{ "%.1f"|format(s.baseline_per_100) }}</td><td>{{ "%.2g"|format(s.p) }}</td></tr>{% endfor %}</table>{% endif %}
{% if top_features %}<p>漂移最大的特征（最后一个月）<span class="en">features drifting most (last month)</span>:
{% for n, v in top_features %}{{ n }} {{ "%.3f"|format(v) }}{% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}

<h2>等级迁移与校准 <span class="en">Grade migration and calibration</span></h2>
{% if figs.migration %}<img src="data:image/png;base64,{{ figs.migration }}" alt="migration">{% endif %}
{% if figs.calibration %}<img src="data:image/png;base64,{{ figs.calibration }}" alt="calibration">{% endif %}
{% if r.notes %}<h2>说明 <span class="en">Notes</span></h2><ul>{% for n in r.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""

_CELLS = """<table><tr><th class="l">{{ title }}</th>{% for g in grades %}<th>{{ g }}: n</th><th>{{ g }}: 每百 per 100 (95% CI)</th>{% endfor %}<th>A&lt;B&lt;C&lt;D</th></tr>
{% for row in rows %}<tr><td class="l">{{ label(row[key]) }}</td>{% for g in grades %}{% set c = row.grades[g] %}<td>{{ c.random_inspections }}</td>
<td>{% if c.adverse_per_100 is not none %}{{ "%.1f"|format(c.adverse_per_100) }} ({{ "%.1f"|format(c.ci_low) }}–{{ "%.1f"|format(c.ci_high) }}){% else %}—{% endif %}</td>{% endfor %}
<td>{{ "是 yes" if row.monotone else "否 no" }}</td></tr>{% endfor %}</table>"""


def render_html(report: dict[str, Any], min_n: int) -> str:
    """The whole report (the ``MonitorReport.to_json()`` dict) as one HTML page."""
    env = Environment(autoescape=True)
    cells_tpl = env.from_string(_CELLS)

    def cells(rows: list[dict], key: str) -> Any:

        def label(value: str) -> str:
            if key == "district":
                return f"{district_label(value, 'zh')} {district_label(value, 'en')}"
            return value if value == "other" else f"{sector_label(value, 'zh')} {sector_label(value, 'en')}"

        title = "区 district" if key == "district" else "行业 sector"
        return Markup(cells_tpl.render(rows=rows, key=key, grades=GRADES, label=label, title=title))

    last = report["months"][-1]["psi_features"] if report["months"] else {}
    top = sorted(((n, v) for n, v in last.items() if v is not None), key=lambda t: -t[1])[:8]
    shifted = [s for s in report["sector_shift"] if s.get("shifted")]
    return env.from_string(_TEMPLATE).render(
        r=report,
        figs=figures(report),
        grades=GRADES,
        cells=cells,
        min_n=min_n,
        top_features=top,
        shifted=shifted,
    )
