"""Rendering pages: one Jinja2 environment (autoescaped), the language of a request, Chinese number
and ISO date formatting, and two small SVG charts drawn on the server (no script, no CDN)."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from riskengine.core.contract import district_label, sector_label

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LANG_COOKIE = "rk_lang"
LANGS = ("zh", "en")

GRADE_NAMES = {"A": ("低风险", "low risk"), "B": ("一般风险", "general risk"),
               "C": ("较高风险", "higher risk"), "D": ("高风险", "high risk")}
ROLE_NAMES = {"inspector": ("检查人员", "inspector"), "credit_office": ("信用科", "credit office"),
              "sector": ("行业伙伴", "sector partner"), "admin": ("管理员", "administrator")}
STRATUM_NAMES = {"mandatory": ("必查", "mandatory"), "random": ("双随机", "random")}
EVENT_NAMES = {
    "random": ("双随机检查", "random"), "targeted": ("重点检查", "targeted"),
    "complaint": ("投诉核查", "complaint"),
    "follow_up": ("复查", "follow-up"), "license": ("许可检查", "licence"), "pass": ("合格", "pass"),
    "conditional": ("责令整改", "conditional"), "fail": ("不合格", "fail"), "minor": ("轻微", "minor"),
    "moderate": ("较重", "moderate"), "serious": ("严重", "serious"),
}
STATUS_NAMES = {"scheduled": ("已排期", "scheduled"), "over_capacity": ("超出能力未排期", "over capacity")}


def language(request: Request) -> str:
    """``?lang=`` on this request, else the language cookie, else Chinese (what officers read; the
    browser's Accept-Language is not used: headless and borrowed browsers say English)."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGS else "zh"  # type: ignore[return-value]


def number(value: Any, lang: str = "zh", digits: int = 0) -> str:
    """A count or amount as officers read it: 万 and 亿 for large numbers in Chinese, thousands
    separators in English (e.g. 1234567 -> 123.46万 / 1,234,567)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    x = float(value)
    if lang == "zh" and abs(x) >= 1e8:
        return f"{x / 1e8:,.2f}亿"
    if lang == "zh" and abs(x) >= 1e4:
        return f"{x / 1e4:,.2f}万"
    return f"{x:,.{digits}f}"


def percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def iso(value: Any) -> str:
    """Dates as YYYY-MM-DD, times as YYYY-MM-DD HH:MM (UTC)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def pair(names: dict[str, tuple[str, str]], key: Any, lang: str) -> str:
    if key not in names:
        return "—" if key is None else str(key)
    zh, en = names[key]
    return zh if lang == "zh" else en


def history_svg(points: list[tuple[date, str, int | None]], lang: str) -> Markup:
    """A small step chart of grades over as_of dates (D at the top), with a text alternative."""
    if not points:
        return Markup("")
    width, height, left, top, step_y = 360, 120, 28, 12, 24
    levels = {"D": 0, "C": 1, "B": 2, "A": 3}
    n = len(points)
    xs = [left + (width - left - 16) * (i / max(n - 1, 1)) for i in range(n)]
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-labelledby="hist-title"><title id="hist-title">'
             f'{escape("等级历史" if lang == "zh" else "Grade history")}: '
             f'{escape(", ".join(f"{d.isoformat()} {g}" for d, g, _ in points))}</title>']
    for grade, lvl in levels.items():
        y = top + lvl * step_y
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y}" y2="{y}" class="grid"/>'
                     f'<text x="4" y="{y + 4}" class="axis">{grade}</text>')
    coords = [(x, top + levels.get(g, 3) * step_y) for x, (_, g, _) in zip(xs, points, strict=True)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y}" for i, (x, y) in enumerate(coords))
    parts.append(f'<path d="{path}" class="line"/>')
    for (x, y), (_day, g, _) in zip(coords, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="4" class="dot grade-{escape(g)}"/>')
    parts.append(f'<text x="{left}" y="{height - 4}" class="axis">{points[0][0].isoformat()}</text>')
    if n > 1:
        parts.append(f'<text x="{width - 8}" y="{height - 4}" class="axis" text-anchor="end">'
                     f'{points[-1][0].isoformat()}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def waterfall_svg(reasons: list[dict[str, Any]], lang: str, base: float | None = None) -> Markup:
    """The reasons' signed contributions as a waterfall (red raises the risk, blue lowers it), from
    the baseline, if known, to the enterprise's value; labels are the reasons' texts."""
    items = [r for r in reasons if r.get("contribution") is not None]
    if not items:
        return Markup("")
    row_h, label_w, bar_w = 26, 300, 260
    width = label_w + bar_w + 70
    height = row_h * (len(items) + 1) + 30
    start = base or 0.0
    running, spans = start, []
    for r in items:
        c = float(r["contribution"])
        spans.append((running, running + c, c, r))
        running += c
    lo = min([start, running] + [min(a, b) for a, b, _, _ in spans])
    hi = max([start, running] + [max(a, b) for a, b, _, _ in spans])
    scale = bar_w / ((hi - lo) or 1.0)

    def x(v: float) -> float:
        return label_w + (v - lo) * scale

    title = "风险因素贡献（瀑布图）" if lang == "zh" else "Contributions of risk factors (waterfall)"
    parts = [f'<svg class="chart waterfall" viewBox="0 0 {width} {height}" width="100%" '
             f'style="max-width:{width}px" role="img" aria-labelledby="wf-title">'
             f'<title id="wf-title">{escape(title)}</title>']
    y = 8
    base_label = "基准" if lang == "zh" else "baseline"
    parts.append(f'<text x="{label_w - 8}" y="{y + 16}" class="label" text-anchor="end">'
                 f'{escape(base_label)}</text><line x1="{x(start):.1f}" x2="{x(start):.1f}" y1="{y}" '
                 f'y2="{height - 20}" class="grid"/>')
    for a, b, c, r in spans:
        y += row_h
        text = str(r.get(f"text_{lang}") or r.get("text_zh") or r.get("code") or "")
        short = text if len(text) <= 30 else text[:29] + "…"
        left_x, right_x = sorted((x(a), x(b)))
        cls = "up" if c > 0 else "down"
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" class="label" text-anchor="end">'
                     f'<title>{escape(text)}</title>{escape(short)}</text>'
                     f'<rect x="{left_x:.1f}" y="{y + 4}" width="{max(right_x - left_x, 1):.1f}" '
                     f'height="{row_h - 8}" class="{cls}"/>'
                     f'<text x="{right_x + 4:.1f}" y="{y + 16}" class="value">{c:+.2f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


_PAIRED = re.compile(r"(.*)（(.*)）", re.S)


def one_language(text: str | None, lang: str) -> str:
    """The page's half of a bilingual plan text: ``中文 / English`` (a plan row's why) or
    ``中文（English）；…`` (its top reasons, as ``supervision.plan`` joins them)."""
    if not text:
        return ""
    out = []
    for item in text.split("；"):
        if " / " in item:
            zh, en = item.split(" / ", 1)
        elif match := _PAIRED.fullmatch(item.strip()):
            zh, en = match.group(1), match.group(2)
        else:
            zh = en = item
        out.append((zh if lang == "zh" else en).strip())
    return ("；" if lang == "zh" else "; ").join(out)


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page in the request's language, with the helpers every template uses."""
    lang = language(request)
    csrf = request.scope.get("csrftoken")

    def tr(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    base = {
        "request": request, "lang": lang, "tr": tr,
        "csrftoken": csrf() if callable(csrf) else "",
        "user": getattr(request.state, "principal", None),
        "num": lambda v, digits=0: number(v, lang, digits), "pct": percent, "iso": iso,
        "one_language": lambda text: one_language(text, lang),
        "grade_name": lambda g: pair(GRADE_NAMES, g, lang),
        "role_name": lambda r: pair(ROLE_NAMES, r, lang),
        "stratum_name": lambda s: pair(STRATUM_NAMES, s, lang),
        "status_name": lambda s: pair(STATUS_NAMES, s, lang),
        "event_name": lambda e: pair(EVENT_NAMES, e, lang),
        "district_name": lambda d: district_label(d, lang) if d else "—",
        "sector_name": lambda s: sector_label(s, lang) if s else "—",
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    response = TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)
    response.headers["Content-Language"] = lang
    response.headers["Cache-Control"] = "no-store"  # confidential: never cached by browser or proxy
    return response
