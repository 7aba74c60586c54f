"""Scoring: the grades frame, grades files, and the score / explain commands on the small city."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from models.artifact import CreditModel
from models.grading import F_DISHONEST, F_ORDERED_HIGH_RECALLS, HARD_RULES, score_from_probability
from models.scoring import GRADES_SCHEMA, NO_CHAMPION, score_features
from riskengine.core.config import Settings
from riskengine.core.errors import ModelError, UsageError
from riskengine.workflows.reports.excel import HEADERS_ZH
from riskengine.workflows.scoring import read_grades, score_enterprises, write_grades

AS_OF = date(2025, 7, 1)
RULE_COLUMNS = sorted({c for r in HARD_RULES for c in r.columns})


# --- a tiny model on hand-made features ------------------------------------------------------------


def hand_features(n: int = 400, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame({
        "enterprise_id": [f"E{i:04d}" for i in range(n)],
        "as_of": [AS_OF] * n,
        "sampling__fail_365d": rng.poisson(0.5, n).astype(float),
        "complaints__count_365d": rng.poisson(1.0, n).astype(float),
        "profile__sector": rng.choice(["wire_cable", "retail"], n),
        "profile__district": rng.choice(["420106", "420102"], n),
    })
    rules = {c: pl.lit(0) for c in RULE_COLUMNS if c not in frame.columns}
    rules["profile__age_days"] = pl.lit(3000)  # established long ago: rule R5 does not apply
    return frame.with_columns(**rules)


@pytest.fixture(scope="module")
def tiny_model() -> CreditModel:
    frame = hand_features(3000, seed=1)
    x = frame.select("sampling__fail_365d", "complaints__count_365d").to_numpy()
    rng = np.random.default_rng(2)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-(-3 + 1.5 * x[:, 0] + 0.4 * x[:, 1])))).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 5, "seed": 1, "deterministic": True,
                         "num_threads": 1, "verbose": -1},
                        lgb.Dataset(x, y), num_boost_round=20)
    return CreditModel(booster, ["sampling__fail_365d", "complaints__count_365d"], version="7")


def test_grades_frame_has_the_contract_columns_and_types(tiny_model):
    grades = score_features(tiny_model, hand_features(), settings=Settings())
    assert grades.schema == pl.Schema(GRADES_SCHEMA)
    assert grades.height == 400 and grades["model_version"].unique().to_list() == ["7"]
    assert grades["sector"].is_in(["wire_cable", "retail"]).all()  # from the profile columns


def test_probability_is_the_models_and_score_follows_the_documented_map(tiny_model):
    features = hand_features()
    grades = score_features(tiny_model, features, settings=Settings())
    assert np.allclose(grades["probability"].to_numpy(), tiny_model.predict_proba(features))
    assert (grades["score"].to_numpy() == score_from_probability(grades["probability"].to_numpy())).all()


def test_chunked_scoring_equals_one_pass(tiny_model):
    features = hand_features()
    one = score_features(tiny_model, features, settings=Settings())
    chunked = score_features(tiny_model, features, settings=Settings(), chunk_rows=37)
    assert one.equals(chunked)


def test_hard_rule_shows_in_grade_rule_and_first_reason(tiny_model):
    features = hand_features(5).with_columns(pl.when(pl.col("enterprise_id") == "E0002").then(1)
                                             .otherwise(0).alias(F_DISHONEST))
    grades = score_features(tiny_model, features, settings=Settings())
    row = grades.row(2, named=True)
    assert (row["grade"], row["rule"]) == ("D", "R1_DISHONEST_LIST")
    assert row["reasons"][0]["code"] == "R1_DISHONEST_LIST" and row["reasons"][0]["contribution"] is None


def test_previous_grades_keep_a_grade_within_the_margin(tiny_model):
    features = hand_features(50)
    settings = Settings(grades={"band_edges": (450, 620, 750), "hysteresis": 1000})
    now = score_features(tiny_model, features, settings=settings)
    previous = now.with_columns(pl.lit("C").alias("grade"), pl.lit("C").alias("model_grade"))
    again = score_features(tiny_model, features, previous, settings=settings)
    assert (again["model_grade"] == "C").all()  # a margin of 1000 points never lets go


def test_more_than_one_row_per_enterprise_is_refused(tiny_model):
    features = pl.concat([hand_features(3), hand_features(3)])
    with pytest.raises(ModelError, match="more than one row for E0000"):
        score_features(tiny_model, features, settings=Settings())


def test_ordered_high_hazard_recall_needs_both_on_the_same_recall_before_as_of():
    from models.scoring import add_rule_columns
    from riskengine.lake.layout import empty_table

    recalls = pl.DataFrame({
        "recall_id": ["r1", "r2", "r3", "r4", "r5"],
        "enterprise_id": ["E0000", "E0000", "E0001", "E0002", "E0003"],
        "announced_on": [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1), AS_OF, date(2024, 6, 1)],
        "mode": ["ordered", "voluntary", "ordered", "ordered", "ordered"],
        "hazard": ["low", "high", "high", "high", "high"],
    }).lazy()
    tables = {"recalls": pl.concat([empty_table("recalls"), recalls], how="diagonal_relaxed")}
    features = hand_features(4).drop(F_ORDERED_HIGH_RECALLS)
    out = add_rule_columns(features, tables)
    # E0000: ordered-low + voluntary-high (no); E0001: yes; E0002: on as_of (not yet); E0003: > 1 year ago
    assert out[F_ORDERED_HIGH_RECALLS].to_list() == [0, 1, 0, 0]


# --- grades files ----------------------------------------------------------------------------------


def test_csv_grades_file_holds_reasons_as_json(tiny_model, tmp_path):
    grades = score_features(tiny_model, hand_features(20), settings=Settings())
    out = write_grades(grades, tmp_path / "g.csv")
    back = pl.read_csv(out, infer_schema_length=0)
    assert back.columns == list(GRADES_SCHEMA)
    assert [json.loads(r) for r in back["reasons"]] == grades["reasons"].to_list()


def test_parquet_grades_file_round_trips_and_serves_as_previous(tiny_model, tmp_path):
    grades = score_features(tiny_model, hand_features(20), settings=Settings())
    out = write_grades(grades, tmp_path / "g.parquet")
    assert read_grades(out).equals(grades)


def test_excel_grades_file_has_chinese_headers(tiny_model, tmp_path):
    from openpyxl import load_workbook

    grades = score_features(tiny_model, hand_features(20), settings=Settings())
    out = write_grades(grades, tmp_path / "g.xlsx")
    sheet = load_workbook(out).active
    assert [c.value for c in sheet[1]] == [HEADERS_ZH[c] for c in GRADES_SCHEMA]
    assert sheet.max_row == 21


def test_unknown_output_type_writes_nothing(tiny_model, tmp_path):
    grades = score_features(tiny_model, hand_features(5), settings=Settings())
    with pytest.raises(UsageError, match=".json"):
        write_grades(grades, tmp_path / "g.json")
    assert list(tmp_path.iterdir()) == []


def test_csv_grades_file_serves_as_previous_grades(tiny_model, tmp_path):
    features = hand_features(30)
    settings = Settings(grades={"band_edges": (450, 620, 750), "hysteresis": 1000})
    earlier = score_features(tiny_model, features, settings=settings).with_columns(
        pl.lit("B").alias("grade"), pl.lit("B").alias("model_grade"))
    previous = read_grades(write_grades(earlier, tmp_path / "june.csv"))
    assert (score_features(tiny_model, features, previous, settings=settings)["model_grade"] == "B").all()


def test_previous_file_without_grades_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    pl.DataFrame({"enterprise_id": ["E1"]}).write_csv(path)
    with pytest.raises(UsageError, match="grade"):
        read_grades(path)


def test_previous_grades_come_from_the_store_before_the_as_of(tiny_model, tmp_path):
    from riskengine.core.store import Store
    from riskengine.workflows.scoring import previous_from_store

    settings = Settings(home=tmp_path)
    assert previous_from_store(settings, AS_OF) is None  # no store yet
    june = score_features(tiny_model, hand_features(10).with_columns(pl.lit(date(2025, 6, 1)).alias("as_of")),
                          settings=settings)
    Store(settings.store_file).save_grades(june)
    assert previous_from_store(settings, date(2025, 6, 1)) is None  # not the same month
    assert previous_from_store(settings, AS_OF)["enterprise_id"].to_list() == june["enterprise_id"].to_list()


# --- the small city, end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_training(small_lake: Path):
    """A quick training run on the small city (few rounds; quality is not the point here)."""
    from models.train import TrainConfig, train_model
    from riskengine.lake.layout import load_tables

    config = TrainConfig(snapshots=6, test_snapshots=1, max_rounds=60, baselines=False,
                         compare_selection=False, num_threads=2)
    return train_model(load_tables(small_lake), date(2025, 7, 1), config=config)


@pytest.fixture(scope="module")
def city_model(city_training) -> CreditModel:
    return city_training.model


@pytest.fixture(scope="module")
def city_grades(small_lake: Path, city_model: CreditModel) -> pl.DataFrame:
    return score_enterprises(small_lake, AS_OF, model=city_model, settings=Settings())


def test_every_active_enterprise_is_graded_once(small_lake, city_grades):
    enterprises = pl.read_parquet(small_lake / "enterprises")
    active = enterprises.filter((pl.col("status") == "active") & (pl.col("established_on") < AS_OF))
    assert sorted(city_grades["enterprise_id"].to_list()) == sorted(active["enterprise_id"].to_list())


def test_small_city_grades_are_mostly_a_or_b_with_few_d(city_grades):
    share = city_grades["grade"].value_counts(normalize=True).to_dict(as_series=False)
    shares = dict(zip(share["grade"], share["proportion"], strict=True))
    assert shares.get("A", 0) + shares.get("B", 0) >= 0.75
    assert shares.get("D", 0) <= 0.10


def test_reasons_on_the_small_city_are_plain_sentences_about_the_records(city_grades):
    from models.reason_groups import RECORD_GROUPS

    reasons = city_grades.select(pl.col("reasons").explode().struct.unnest()).drop_nulls("code")
    model_reasons = reasons.filter(pl.col("contribution").is_not_null())
    assert model_reasons.height > 0 and (model_reasons["contribution"] > 0).all()
    assert model_reasons["code"].is_in([*RECORD_GROUPS, "clean_record", "associations", "baseline"]).all()
    for column in ("text_zh", "text_en"):
        assert not model_reasons[column].str.contains("{value", literal=True).any()
        assert not model_reasons[column].str.contains("__", literal=True).any()  # no feature code


def test_rule_is_set_exactly_where_the_grade_differs_from_the_model(city_grades):
    changed = city_grades.filter(pl.col("grade") != pl.col("model_grade"))
    assert changed.height > 0 and changed.height < city_grades.height  # both kinds present
    assert changed["rule"].is_not_null().all()
    assert city_grades.filter(pl.col("grade") == pl.col("model_grade"))["rule"].is_null().all()


# --- the commands ----------------------------------------------------------------------------------


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def registered_home(city_training, tmp_path_factory) -> Path:
    """A working folder whose MLflow store has the small city's model as ``champion``."""
    from models.registry import log_training, promote

    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home)
    log_training(city_training, settings)
    promote(settings)
    return home


@pytest.fixture()
def champion(monkeypatch, registered_home):
    """Run commands in the registered home (``RISKENGINE_HOME``)."""
    monkeypatch.setenv("RISKENGINE_HOME", str(registered_home))
    from riskengine.core.config import get_settings

    get_settings.cache_clear()
    yield registered_home
    get_settings.cache_clear()


def test_score_command_writes_grades_store_and_prints_distribution(champion, small_lake, tmp_path, capsys):
    from riskengine.core.store import Store

    store = Store(champion / "riskengine.duckdb")
    out = tmp_path / "grades.parquet"
    code, stdout, stderr = run_cli(["score", "--lake", str(small_lake), "--as-of", "2025-07-01",
                                    "--out", str(out)], capsys)
    assert code == 0, stderr
    grades = pl.read_parquet(out)
    assert grades.schema == pl.Schema(GRADES_SCHEMA)
    counts = grades["grade"].value_counts()
    for grade, n in counts.iter_rows():
        assert any(line.split()[1:3] == [grade, "│"] and f" {n} " in line for line in stdout.splitlines())
    assert store.latest_grades(AS_OF).height == grades.height
    assert grades["model_version"][0] != "local"  # the registered champion's version


def test_score_command_with_a_bad_date_exits_2(champion, small_lake, tmp_path, capsys):
    code, _, stderr = run_cli(["score", "--lake", str(small_lake), "--as-of", "2025-13-01",
                               "--out", str(tmp_path / "g.csv")], capsys)
    assert code == 2 and "--as-of" in stderr


def test_explain_prints_grade_and_reasons_and_draws_a_waterfall(champion, small_lake, city_grades,
                                                                tmp_path, capsys):
    target = city_grades.filter(pl.col("reasons").list.len() > 0).sort("score", descending=True).row(
        0, named=True)
    png = tmp_path / "why.png"
    code, stdout, stderr = run_cli(["explain", target["enterprise_id"], "--lake", str(small_lake),
                                    "--as-of", "2025-07-01", "--png", str(png)], capsys)
    assert code == 0, stderr
    assert target["grade"] in stdout and str(target["score"]) in stdout
    assert "自身记录" in stdout  # own-record reasons are listed as such
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The bundled Noto Sans CJK font draws the labels in Chinese on any machine.
    assert "no CJK font found" not in stderr


def test_explain_json_is_the_contract_structure_with_the_stored_reasons_and_their_records(
        champion, small_lake, city_grades, capsys):
    import json

    target = city_grades.filter(pl.col("reasons").list.len() > 0).sort("score", descending=True).row(
        0, named=True)
    code, stdout, stderr = run_cli(["explain", target["enterprise_id"], "--lake", str(small_lake),
                                    "--as-of", "2025-07-01", "--format", "json"], capsys)
    assert code == 0, stderr
    body = json.loads(stdout)
    assert {"enterprise_id", "as_of", "grade", "score", "probability", "rule", "baseline",
            "reasons"} <= set(body)
    assert body["grade"] == target["grade"] and body["as_of"] == "2025-07-01"
    assert [r["code"] for r in body["reasons"]] == [r["code"] for r in target["reasons"]]
    kinds = [r["kind"] for r in body["reasons"]]
    assert kinds == sorted(kinds, key=["own_record", "rule", "associated", "baseline"].index)
    assert set(body["baseline"]) >= {"text_zh", "text_en", "contribution"}
    own = [r for r in body["reasons"] if r["kind"] == "own_record"]
    assert own and own[0]["evidence"], "the first own-record reason names its records"
    for item in own[0]["evidence"]:
        assert set(item) == {"table", "record_id", "date", "text_zh", "text_en"}
        assert item["date"] < "2025-07-01" and item["text_zh"].startswith(item["date"])
    decomposition = body["decomposition"]
    total = decomposition["base_value"] + sum(g["contribution"] for g in decomposition["groups"])
    assert total == pytest.approx(decomposition["raw_score"], abs=1e-9)


def test_the_bundled_font_draws_every_chinese_reason_without_missing_glyphs(tmp_path):
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from features import FEATURES
    from riskengine.workflows.reports.plots import cjk_font

    font = cjk_font()
    assert font == "Noto Sans CJK SC"
    texts = [spec.text_zh.format(value=3.0 if spec.dtype != "str" else "fail") for spec in FEATURES.values()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        with plt.rc_context({"font.family": [font]}):
            fig, ax = plt.subplots(figsize=(6, 30))
            for i, text in enumerate(texts):
                ax.text(0, i, text)
            ax.set_ylim(0, len(texts))
            fig.savefig(tmp_path / "all.png")
            plt.close(fig)


def test_explain_malformed_uscc_exits_2_with_the_reason(champion, small_lake, capsys):
    code, _, stderr = run_cli(["explain", "91350100M000100Y44", "--lake", str(small_lake),
                               "--as-of", "2025-07-01"], capsys)
    assert code == 2 and "check character" in stderr.lower()


def test_explain_unknown_enterprise_exits_1(champion, small_lake, capsys):
    code, _, stderr = run_cli(["explain", "91350100M000100Y43", "--lake", str(small_lake),
                               "--as-of", "2025-07-01"], capsys)
    assert code == 1 and "no enterprise 91350100M000100Y43" in stderr


def test_score_before_any_enterprise_existed_exits_1(champion, small_lake, tmp_path, capsys):
    code, _, stderr = run_cli(["score", "--lake", str(small_lake), "--as-of", "1980-01-01",
                               "--out", str(tmp_path / "g.parquet")], capsys)
    assert code == 1 and "nothing to grade" in stderr
    assert not (tmp_path / "g.parquet").exists()


def test_score_without_champion_says_how_to_get_one(monkeypatch, small_lake, tmp_path, capsys):
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    from riskengine.core.config import get_settings

    get_settings.cache_clear()
    try:
        code, _, stderr = run_cli(["score", "--lake", str(small_lake), "--as-of", "2025-07-01",
                                   "--out", str(tmp_path / "g.parquet")], capsys)
    finally:
        get_settings.cache_clear()
    assert code == 1 and NO_CHAMPION in stderr


# --- the credit office's notebook ------------------------------------------------------------------


def test_credit_office_notebook_runs_top_to_bottom(small_lake, city_model, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "credit_office_review.ipynb"
    model_dir = city_model.save(tmp_path / "model")
    monkeypatch.setenv("RISKENGINE_REVIEW_LAKE", str(small_lake))
    monkeypatch.setenv("RISKENGINE_REVIEW_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("RISKENGINE_REVIEW_MODEL", str(model_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "unchanged grade:" in text and "mean_abs_contribution" in text
    assert f"as of {AS_OF}" in text
