"""The MLflow registry (models.registry) and the train/promote commands, in a temporary local store."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pytest

from models.artifact import CreditModel
from models.registry import CHALLENGER, CHAMPION, client, load_model, promote
from models.train import TrainConfig, TrainResult, train_model
from riskengine.core.config import Settings
from riskengine.core.errors import ModelError, NotFoundError, UsageError
from riskengine.lake.layout import load_tables
from riskengine.workflows.training import register as log_training

D = date(2026, 1, 1)
NAME = "riskengine-credit"


@pytest.fixture(scope="module")
def good(small_lake: Path) -> TrainResult:
    config = TrainConfig(max_rounds=40, early_stopping_rounds=10, compare_selection=False, baselines=False)
    return train_model(load_tables(small_lake), D, config=config)


@pytest.fixture(scope="module")
def bad(good: TrainResult) -> TrainResult:
    """The same run with a model that learned noise: clearly worse on the backtest."""
    model = good.model
    rows = good.test_frame
    labels = np.random.default_rng(0).integers(0, 2, rows.height).astype(float)
    data = lgb.Dataset(model.encode(rows, neutralise=False), labels, feature_name=model.feature_names)
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": 1, "num_threads": 1}, data, 5)
    noisy = CreditModel(
        booster,
        model.feature_names,
        calibrator=model.calibrator,
        categorical=model.categorical,
        categories=model.categories,
        neutral=model.neutral,
    )
    return replace(good, model=noisy)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow database, made once: creating one runs every schema migration."""
    home = tmp_path_factory.mktemp("mlflow-template")
    client(Settings(home=home)).search_experiments()
    return home / "mlruns" / "mlflow.db"


def _fresh_home(empty_store: Path, home: Path) -> Path:
    (home / "mlruns").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_store, home / "mlruns" / "mlflow.db")
    return home


@pytest.fixture
def settings(empty_store: Path, tmp_path: Path) -> Settings:
    """A new, empty local store for one test."""
    return Settings(home=_fresh_home(empty_store, tmp_path))


@pytest.fixture(scope="module")
def registered(good: TrainResult, empty_store: Path, tmp_path_factory: pytest.TempPathFactory):
    """A store where the good model was logged once by ``log_training``."""
    settings = Settings(home=_fresh_home(empty_store, tmp_path_factory.mktemp("registered")))
    return settings, log_training(good, settings)


@pytest.fixture(scope="module")
def versions(
    good: TrainResult, bad: TrainResult, empty_store: Path, tmp_path_factory: pytest.TempPathFactory
):
    """A store holding version 1 (good) and 2 (bad); each promote test sets the aliases it needs."""
    settings = Settings(home=_fresh_home(empty_store, tmp_path_factory.mktemp("versions")))
    return settings, log_training(good, settings).version, log_training(bad, settings).version


def _alias(settings: Settings, alias: str) -> str:
    return str(client(settings).get_model_version_by_alias(NAME, alias).version)


def _arrange(settings: Settings, champion: str | None, challenger: str | None) -> None:
    cli = client(settings)
    for alias, version in ((CHAMPION, champion), (CHALLENGER, challenger)):
        if version is None:
            with contextlib.suppress(Exception):
                cli.delete_registered_model_alias(NAME, alias)
        else:
            cli.set_registered_model_alias(NAME, alias, version)


def test_train_registers_a_version_with_alias_challenger(registered) -> None:
    settings, run = registered
    assert _alias(settings, CHALLENGER) == run.version
    assert (settings.home / "mlruns" / "mlflow.db").is_file()


def test_run_logs_params_metrics_and_artifacts(registered, good: TrainResult) -> None:
    settings, run = registered
    logged = client(settings).get_run(run.run_id).data
    assert logged.params["feature_schema_hash"] == good.feature_schema_hash
    assert logged.params["as_of"] == "2026-01-01"
    assert "model.all.auc" in logged.metrics and "grade_share_A" in logged.metrics
    files = {a.path for a in client(settings).list_artifacts(run.run_id, "evaluation")}
    assert {"evaluation/shap_summary.png", "evaluation/grade_distribution.json"} <= files
    features = {a.path for a in client(settings).list_artifacts(run.run_id, "features")}
    assert "features/feature_list.json" in features


def test_load_model_by_alias_predicts_like_the_trained_model(registered, good: TrainResult) -> None:
    settings, run = registered
    loaded = load_model(CHALLENGER, settings)
    rows = good.test_frame.head(200)
    np.testing.assert_array_equal(loaded.predict_proba(rows), good.model.predict_proba(rows))
    assert loaded.version == run.version


def test_the_registered_pyfunc_predicts_like_the_trained_model(registered, good: TrainResult) -> None:
    """Anyone with MLflow can load the registered version as a pyfunc and get the same probabilities."""
    import mlflow.pyfunc

    settings, run = registered
    client(settings)  # points MLflow at the test store
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}/{run.version}")
    rows = good.test_frame.select(good.model.feature_names).head(50)
    got = np.asarray(pyfunc.predict(rows.to_pandas()))
    np.testing.assert_allclose(got, good.model.predict_proba(rows), rtol=0, atol=1e-12)


def test_load_model_without_champion_says_how_to_get_one(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="riskengine promote"):
        load_model(CHAMPION, settings)


def test_first_promotion_makes_the_challenger_champion(versions) -> None:
    settings, good_v, _ = versions
    _arrange(settings, champion=None, challenger=good_v)
    result = promote(settings)
    assert result.promoted and result.champion_before is None
    assert _alias(settings, CHAMPION) == good_v


def test_better_challenger_moves_the_champion(versions) -> None:
    settings, good_v, bad_v = versions
    _arrange(settings, champion=bad_v, challenger=good_v)
    result = promote(settings)
    assert result.promoted
    assert _alias(settings, CHAMPION) == good_v
    assert result.backtest["challenger"]["auc"] >= result.backtest["champion"]["auc"]


def test_worse_challenger_is_refused(versions) -> None:
    settings, good_v, bad_v = versions
    _arrange(settings, champion=good_v, challenger=bad_v)
    result = promote(settings)
    assert not result.promoted
    assert "not at least as good" in result.message
    assert _alias(settings, CHAMPION) == good_v


def test_force_needs_a_reason(versions) -> None:
    settings, good_v, bad_v = versions
    _arrange(settings, champion=good_v, challenger=bad_v)
    with pytest.raises(UsageError, match="--reason"):
        promote(settings, force=True)
    assert _alias(settings, CHAMPION) == good_v


def test_forced_promotion_moves_and_logs_the_reason(versions) -> None:
    settings, good_v, bad_v = versions
    _arrange(settings, champion=good_v, challenger=bad_v)
    result = promote(settings, force=True, reason="sector model mandated by the province")
    assert result.promoted and result.forced
    assert _alias(settings, CHAMPION) == bad_v
    tags = client(settings).get_model_version(NAME, bad_v).tags
    assert tags["promotion.forced"] == "true"
    assert tags["promotion.reason"] == "sector model mandated by the province"


def test_promote_without_challenger_says_run_train_first(settings: Settings) -> None:
    with pytest.raises(ModelError, match="run `riskengine train` first"):
        promote(settings)


# --- the commands ----------------------------------------------------------------------------------


def _cli(argv: list[str], home: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the console script's ``main`` with ``home`` as ``Settings.home``; return the exit status."""
    from riskengine.cli import main
    from riskengine.core.config import get_settings

    monkeypatch.setenv("RISKENGINE_HOME", str(home))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
    finally:
        get_settings.cache_clear()
    return int(exit_info.value.code)


def test_promote_command_without_challenger_exits_1_with_a_hint(
    empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["promote"], _fresh_home(empty_store, tmp_path), monkeypatch) == 1
    assert "run `riskengine train` first" in capsys.readouterr().err


def test_train_command_prints_metrics_and_registers_a_challenger(
    small_lake: Path,
    small_city: Path,
    empty_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fresh_home(empty_store, tmp_path)
    argv = [
        "train",
        "--lake",
        str(small_lake),
        "--as-of",
        "2026-01-01",
        "--truth",
        str(small_city),
        "--max-rounds",
        "30",
        "--inspection-snapshots",
        "18",
    ]
    assert _cli(argv, tmp_path, monkeypatch) == 0
    out = capsys.readouterr()
    for scorer in ("lightgbm", "lightgbm_inspection", "lightgbm_mean_logodds", "points_scorecard",
                   "logistic_scorecard", "oracle"):
        assert scorer in out.out
    assert "alias challenger" in out.err
    # the month the bands and shares were set on: the latest whole month before D
    assert "grade distribution on 2025-12-01: A " in out.err
    assert "INFO" not in out.err and "Warning" not in out.err  # MLflow noise stays off the console
    assert _alias(Settings(home=tmp_path), CHALLENGER) == "1"
    assert _cli(["promote"], tmp_path, monkeypatch) == 0
    assert _alias(Settings(home=tmp_path), CHAMPION) == "1"
    capsys.readouterr()
    # The champion's model card: printed by explain --model-card, and the same text in MLflow.
    assert _cli(["explain", "--model-card"], tmp_path, monkeypatch) == 0
    card = capsys.readouterr().out
    for heading in ("# Model card", "## Target", "## Data and population",
                    "## Metrics on the out-of-time test, against the baselines", "## Grades",
                    "## Must not be used for"):
        assert heading in card
    assert "`blend`:" in card and "Weight of the horizon model" in card
    assert "not a basis for punishment" in card
    for scorer in ("lightgbm", "lightgbm_inspection", "lightgbm_mean_logodds", "points_scorecard", "oracle"):
        assert f"| all | {scorer} |" in card and f"`{scorer}`:" in card  # a row and a legend entry
    settings = Settings(home=tmp_path)
    version = client(settings).get_model_version(settings.mlflow.model_name, "1")
    logged = mlflow.artifacts.load_text(f"runs:/{version.run_id}/model_card.md")
    assert logged.strip() == card.strip()
    # Rolling-origin validation's choice and every candidate's fold AUCs are in MLflow too.
    selection = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/evaluation/selection.json")
    params = client(settings).get_run(version.run_id).data.params
    assert params["chosen.horizon"] == selection["chosen"]["horizon"]
    assert params["chosen.horizon"].startswith("horizon/") and "chosen.inspection" in params
    tried = {c["candidate"] for c in selection["candidates"]}
    assert params["chosen.horizon"] in tried and len(tried) >= 4
    assert all(len(c["fold_auc"]) == len(c["rounds"]) for c in selection["candidates"])


@pytest.mark.parametrize(("option", "value"), [("--inspection-snapshots", "2"),
                                               ("--visit-window-months", "13")])
def test_train_refuses_an_inspection_window_or_month_count_out_of_range_in_one_line(
    small_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    option: str, value: str,
) -> None:
    argv = ["train", "--lake", str(small_lake), "--as-of", "2026-01-01", option, value]
    assert _cli(argv, tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option.strip("-").replace("-", "_") in err[0] and value in err[0]


def test_promote_command_refusal_exits_0_and_keeps_the_champion(
    versions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, good_v, bad_v = versions
    _arrange(settings, champion=good_v, challenger=bad_v)
    assert _cli(["promote"], settings.home, monkeypatch) == 0
    assert "not at least as good" in capsys.readouterr().err
    assert _alias(settings, CHAMPION) == good_v


def test_promote_command_force_with_a_reason_moves_the_champion_and_tags_the_version(
    versions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, good_v, bad_v = versions
    _arrange(settings, champion=good_v, challenger=bad_v)
    assert _cli(["promote", "--force"], settings.home, monkeypatch) == 2  # bad usage: no --reason
    assert "--reason" in capsys.readouterr().err
    assert _alias(settings, CHAMPION) == good_v
    assert _cli(["promote", "--force", "--reason", "省局指定模型"], settings.home, monkeypatch) == 0
    assert _alias(settings, CHAMPION) == bad_v  # the worse challenger, because forced
    tags = client(settings).get_model_version(NAME, bad_v).tags
    assert (tags["promotion.forced"], tags["promotion.reason"]) == ("true", "省局指定模型")


@pytest.mark.parametrize("value", ["1.5", "half", "-0.1"])
def test_train_refuses_a_blend_weight_out_of_range_in_one_line(
    small_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    argv = ["train", "--lake", str(small_lake), "--as-of", "2026-01-01", "--blend-weight", value]
    assert _cli(argv, tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--blend-weight" in err[0] and value in err[0]
