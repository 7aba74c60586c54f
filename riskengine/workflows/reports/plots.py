"""Every plot the engine draws, with one matplotlib setup: the Agg backend (files, no display) and
the bundled Noto Sans CJK font registered, so Chinese labels render on any machine.

matplotlib is imported on first use (it is heavy); models and features never draw.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import noto_cjk_sans_otc
import numpy as np
import polars as pl

from models.artifact import CreditModel
from riskengine.core.files import atomic_write


@cache
def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend with the bundled CJK font registered (once)."""
    import matplotlib  # noqa: PLC0415 - heavy

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - heavy
    from matplotlib import font_manager  # noqa: PLC0415 - heavy

    _register_bundled_cjk_font(font_manager)
    return plt


CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "AR PL UMing CN",
             "Droid Sans Fallback")


def cjk_font() -> str | None:
    """The first font that can draw Chinese, or None: Noto Sans CJK SC as the ``noto-cjk-sans-otc``
    dependency ships it (registered with matplotlib on first use), else one installed on the system."""
    from matplotlib import font_manager  # noqa: PLC0415 - heavy

    pyplot()  # registers the bundled font
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _register_bundled_cjk_font(font_manager) -> None:  # noqa: ANN001
    """Add the bundled Noto Sans CJK collection to matplotlib's fonts (once; quietly absent)."""
    path = str(noto_cjk_sans_otc.FONT_PATH)
    if any(f.fname == path for f in font_manager.fontManager.ttflist):
        return
    try:
        font_manager.fontManager.addfont(path)
    except (OSError, RuntimeError, ValueError):
        return  # a damaged font file: fall back to system fonts or English labels


def waterfall_png(result, path: Path, *, lang: str = "zh", top: int = 10) -> str:  # noqa: ANN001
    """Draw the SHAP waterfall of one explanation into ``path``; returns the label language used.

    From the model's base value (the bias) each bar adds one reason's contribution: own-record
    reasons first (largest |value| first, beyond ``top`` summed in one bar), then associated
    enterprises, the baseline of similar enterprises and the rest, ending at the raw margin (log-odds).
    """
    plt = pyplot()
    font = cjk_font() if lang == "zh" else None
    used = "zh" if font else "en"
    # Own-record reasons first (largest |contribution| first), then associated, baseline and the rest.
    order = {"own_record": 0, "associated": 1, "baseline": 2, "other": 3}
    groups = (result.groups.filter(pl.col("contribution") != 0)
              .with_columns(pl.col("kind").replace_strict(order, default=3, return_dtype=pl.Int8)
                            .alias("_k"), pl.col("contribution").abs().alias("_a"))
              .sort(["_k", "_a"], descending=[False, True]))
    own = groups.filter(pl.col("kind") == "own_record")
    shown = pl.concat([own.head(top), groups.filter(pl.col("kind") != "own_record")])
    rest = float(own.slice(top)["contribution"].sum())
    labels = shown["text_zh" if used == "zh" else "text_en"].to_list()
    values = [float(v) for v in shown["contribution"]]
    if abs(rest) > 0:
        labels.insert(min(top, own.height), f"其余自身记录{own.height - top}项" if used == "zh"
                      else f"{own.height - top} other own-record reasons")
        values.insert(min(top, own.height), rest)
    rc: dict = {"font.family": [font, "sans-serif"]} if font else {}
    with plt.rc_context(rc):  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(values) + 1.8))
        start = result.base_value
        for y, value in enumerate(values):
            ax.barh(len(values) - 1 - y, value, left=start, color="#d62728" if value > 0 else "#1f77b4")
            ax.text(start + value, len(values) - 1 - y, f" {value:+.3f}", va="center",
                    ha="left" if value > 0 else "right", fontsize=8)
            start += value
        ax.set_yticks(range(len(values)), list(reversed(labels)), fontsize=8)
        ax.axvline(result.base_value, color="grey", lw=0.8, ls="--")
        ax.axvline(result.raw, color="black", lw=0.8)
        grade = result.row["grade"]
        ident, points = result.row["enterprise_id"], result.row["score"]
        title = (f"{ident}：等级 {grade}，分值 {points}（对数几率贡献）" if used == "zh"
                 else f"{ident}: grade {grade}, score {points} (log-odds contributions)")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("基准值 → 原始分值（对数几率）" if used == "zh"
                      else "base value → raw score (log-odds)")
        fig.tight_layout()
        try:
            atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
        finally:
            plt.close(fig)
    return used



def shap_summary_png(
    model: CreditModel, features: pl.DataFrame, path: Path, max_rows: int = 1000, top: int = 15, seed: int = 0
) -> Path:
    """A SHAP summary plot as PNG: per feature (top ``top`` by mean |SHAP|), each row's contribution
    to the raw margin, coloured by the feature's value (low blue, high red) — the beeswarm layout of
    ``shap.summary_plot``, drawn with plain matplotlib because shap's version is slow to import and draw.
    """
    plt = pyplot()
    if features.height > max_rows:
        features = features.sample(max_rows, seed=seed)
    contrib = model.contributions(features)[:, :-1]
    matrix = model.encode(features)
    shown = [i for i, n in enumerate(model.feature_names) if n not in model.neutral]
    order = sorted(shown, key=lambda i: -float(np.mean(np.abs(contrib[:, i]))))[:top][::-1]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(order) + 1.5))
    for row, i in enumerate(order):
        values = matrix[:, i]
        finite = np.isfinite(values)
        colour = np.full(values.shape, 0.5)
        if finite.any() and np.ptp(values[finite]) > 0:
            lo, hi = np.nanpercentile(values[finite], [5, 95])
            colour[finite] = np.clip((values[finite] - lo) / max(hi - lo, 1e-12), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, values.shape)
        ax.scatter(contrib[:, i], row + jitter, c=colour, cmap="coolwarm", s=6, alpha=0.7, linewidths=0)
    ax.set_yticks(range(len(order)), [model.feature_names[i] for i in order], fontsize=8)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("SHAP value (contribution to the raw margin; > 0 raises risk)")
    ax.set_title("SHAP summary: feature value low (blue) to high (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def simulation_png(result: Any, path: Path) -> None:
    """Bar chart: expected findings per 100 inspections and share from random draws, per policy."""
    plt = pyplot()
    rows = result.policies.to_dicts()
    names = [r["policy"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.bar(names, [r["expected_findings_per_100"] for r in rows], color=["#999999", "#2F6EBA", "#C0504D"])
    left.set_title("Adverse findings per 100 inspections")
    right.bar(names, [100 * r["random_share"] for r in rows], color=["#999999", "#2F6EBA", "#C0504D"])
    right.set_title("Outcomes from random draws (%)")
    right.set_ylim(0, 105)
    fig.suptitle(f"{result.meta['year']}, {result.meta['capacity_per_month']} inspections a month")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
