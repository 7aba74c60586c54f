"""The MLflow side of the model: log a training run, register ``riskengine-credit`` versions, move the
``challenger`` / ``champion`` aliases (never stages, STYLE.md) and load a ``CreditModel`` by alias.

Store: ``Settings.mlflow.tracking_uri`` if set (a bureau's MLflow server), else a local SQLite store
``<home>/mlruns/mlflow.db`` with artifacts under ``<home>/mlruns/artifacts`` — MLflow 3 deprecates the
plain file store, and the model registry needs a database-backed store.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from models.artifact import META_FILE, MODEL_ARTIFACT, CreditModel
from models.card import model_card
from models.evaluate import auc, capture_at
from riskengine.core.config import Settings, get_settings
from riskengine.core.errors import ModelError, NotFoundError, UsageError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from models.train_config import TrainResult

CHALLENGER = "challenger"
CHAMPION = "champion"
BACKTEST_ARTIFACT = "backtest/test.parquet"


def quiet() -> None:
    """Silence MLflow, Alembic and friends on the console: users see riskengine's output only."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # read when mlflow configures its loggers
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3", "git", "lightgbm", "shap", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, UserWarning, DeprecationWarning):
        warnings.filterwarnings(
            "ignore", category=category, module=r"(mlflow|pydantic|lightgbm|shap|sklearn)"
        )
    warnings.filterwarnings("ignore", message=r".*(file ?store|FileStore|filesystem).*")


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Hide what MLflow prints or warns while logging and registering (it writes to stderr itself)."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def tracking_uri(settings: Settings) -> str:
    """The configured tracking URI, or the local SQLite store under ``<home>/mlruns``."""
    if settings.mlflow.tracking_uri:
        return settings.mlflow.tracking_uri
    settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(settings.mlruns_dir / 'mlflow.db').resolve()}"


def client(settings: Settings | None = None) -> MlflowClient:
    """Point MLflow at the configured store and return a client for it."""
    quiet()
    import mlflow  # noqa: PLC0415 - heavy

    quiet()  # again: importing mlflow (re)configures its loggers
    settings = settings or get_settings()
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(settings.mlflow.registry_uri or uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=settings.mlflow.registry_uri or uri)


def _experiment_id(settings: Settings, cli: MlflowClient) -> str:
    name = settings.mlflow.experiment
    found = cli.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if not settings.mlflow.tracking_uri:
        location = (settings.mlruns_dir / "artifacts").resolve().as_uri()
    return str(cli.create_experiment(name, artifact_location=location))


@dataclass
class RegisteredRun:
    """What ``log_training`` registered."""

    run_id: str
    version: str
    model_name: str
    artifacts: list[str] = field(default_factory=list)


def log_training(
    result: TrainResult, settings: Settings | None = None, *, tags: dict[str, str] | None = None,
    artifacts: Mapping[str, Sequence[Path]] | None = None,
) -> RegisteredRun:
    """Log a training run to MLflow, register a model version and point ``challenger`` at it.

    ``artifacts`` (artifact folder -> files, e.g. the evaluation plots that
    ``riskengine.workflows.training`` draws) are logged as given: the registry draws nothing."""
    settings = settings or get_settings()
    cli = client(settings)
    import mlflow  # noqa: PLC0415 - heavy
    from mlflow.models import infer_signature  # noqa: PLC0415 - heavy


    model = result.model
    experiment = _experiment_id(settings, cli)
    params: dict[str, Any] = {
        "as_of": result.plan.known_before.isoformat(),
        "n_features": len(model.feature_names),
        "feature_schema_hash": result.feature_schema_hash,
        "nuisance_features": ",".join(model.nuisance) or "-",
        "calibrator": model.calibrator.method,
        "train_snapshots": f"{result.plan.train[0]}..{result.plan.train[-1]}",
        "valid_snapshots": f"{result.plan.valid[0]}..{result.plan.valid[-1]}",
        "calib_snapshots": f"{result.plan.calib[0]}..{result.plan.calib[-1]}",
        "test_snapshots": f"{result.plan.test[0]}..{result.plan.test[-1]}",
        "best_iteration": result.info["model"].get("best_iteration"),
        # What rolling-origin validation chose per target (feature set, tree size); every candidate's
        # fold AUCs are in evaluation/selection.json.
        **{f"chosen.{t}": c for t, c in (result.info.get("chosen") or {}).items()},
        **{f"config.{k}": v for k, v in vars(result.config).items()},
    }
    with (
        tempfile.TemporaryDirectory(prefix="riskengine-train-") as tmp_name,
        _silenced(),
        mlflow.start_run(experiment_id=experiment) as run,
    ):
        tmp = Path(tmp_name)
        mlflow.log_params(params)
        mlflow.set_tags(
            {"riskengine.as_of": params["as_of"], "riskengine.kind": "credit-train", **(tags or {})}
        )
        metrics = {k.replace("lightgbm.", "model.", 1): v for k, v in result.headline().items()}
        for row in result.grade_distribution.iter_rows(named=True):
            metrics[f"grade_share_{row['grade']}"] = float(row["share"])
        metrics.update({f"time.{k}": v for k, v in result.timings.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        mlflow.log_dict(
            {
                "features": model.feature_names,
                "schema": result.feature_schema,
                "schema_hash": result.feature_schema_hash,
            },
            "features/feature_list.json",
        )
        mlflow.log_dict(result.plan.to_dict(), "evaluation/snapshots.json")
        selection = {"chosen": result.info.get("chosen", {}), "candidates": result.info.get("selection", [])}
        mlflow.log_dict(selection, "evaluation/selection.json")
        mlflow.log_dict(
            {"grades": result.grade_distribution.to_dicts()}, "evaluation/grade_distribution.json"
        )
        mlflow.log_text(result.metrics.write_csv(), "evaluation/metrics.csv")
        result.test_frame.write_parquet(tmp / "test.parquet")
        mlflow.log_artifact(str(tmp / "test.parquet"), artifact_path="backtest")
        for artifact_path, files in (artifacts or {}).items():
            for file in files:
                mlflow.log_artifact(str(file), artifact_path=artifact_path)
        from models.pyfunc import CreditModelPyfunc  # noqa: PLC0415 - it imports mlflow

        card = model_card(result)
        model.metadata["model_card"] = card  # `riskengine explain --model-card` reads it from the model
        mlflow.log_text(card, "model_card.md")
        model_dir = model.save(tmp / MODEL_ARTIFACT)
        sample = result.test_frame.select(model.feature_names).head(200)
        signature = infer_signature(sample.to_pandas(), model.predict_proba(sample))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CreditModelPyfunc(),
            artifacts={MODEL_ARTIFACT: str(model_dir)},
            signature=signature,
            pip_requirements=[],
        )
        version = mlflow.register_model(
            info.model_uri,
            settings.mlflow.model_name,
            tags={
                "as_of": params["as_of"],
                "run_id": run.info.run_id,
                "feature_schema_hash": result.feature_schema_hash,
            },
        )
    cli.set_registered_model_alias(settings.mlflow.model_name, CHALLENGER, version.version)
    model.version = str(version.version)
    return RegisteredRun(run.info.run_id, str(version.version), settings.mlflow.model_name)


def _version_by_alias(cli: MlflowClient, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - heavy

    try:
        return cli.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


@contextlib.contextmanager
def _downloaded(
    uri: str | None = None, *, run_id: str | None = None, path: str | None = None
) -> Iterator[Path]:
    import mlflow  # noqa: PLC0415 - heavy

    tmp = Path(tempfile.mkdtemp(prefix="riskengine-model-"))
    try:
        if uri is not None:
            yield Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp)))
        else:
            yield Path(
                mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(tmp))
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_version(cli: MlflowClient, name: str, mv: Any) -> CreditModel:
    with _downloaded(f"models:/{name}/{mv.version}") as folder:
        found = sorted(folder.rglob(META_FILE))
        if not found:
            raise ModelError(f"model {name} version {mv.version} holds no riskengine model ({META_FILE})")
        return CreditModel.load(found[0].parent, version=str(mv.version))


def load_model(alias: str = CHAMPION, settings: Settings | None = None) -> CreditModel:
    """The ``CreditModel`` that ``models:/riskengine-credit@<alias>`` points at."""
    settings = settings or get_settings()
    cli = client(settings)
    name = settings.mlflow.model_name
    mv = _version_by_alias(cli, name, alias)
    if mv is None:
        hint = (
            "run `riskengine train` first"
            if alias == CHALLENGER
            else "run `riskengine train` and then `riskengine promote`"
        )
        raise NotFoundError(f"no model {name}@{alias} in the MLflow store {tracking_uri(settings)}; {hint}")
    return _load_version(cli, name, mv)


@dataclass
class Promotion:
    """The outcome of ``promote``: what was compared and whether ``champion`` moved."""

    promoted: bool
    challenger: str
    champion_before: str | None
    forced: bool = False
    reason: str | None = None
    backtest: dict[str, dict[str, float]] = field(default_factory=dict)
    message: str = ""


def backtest_metrics(model: CreditModel, data: pl.DataFrame) -> dict[str, float]:
    """AUC and capture at 10 % of ``model`` on backtest rows (the contract label, every enterprise)."""

    y = data["label"].cast(pl.Int64).to_numpy()
    score = model.predict_raw(data)
    return {"auc": auc(y, score), "capture_10": capture_at(y, score, 0.10), "rows": float(data.height)}


def at_least_as_good(challenger: dict[str, float], champion: dict[str, float]) -> bool:
    """The promotion test: the challenger's backtest AUC *and* capture at 10 % are each at least the
    champion's (a tie on both promotes: the newer model wins when nothing tells them apart)."""
    return (challenger["auc"] >= champion["auc"]
            and challenger["capture_10"] >= champion["capture_10"])


def promote(settings: Settings | None = None, *, force: bool = False, reason: str | None = None) -> Promotion:
    """Move ``champion`` to the challenger if it is at least as good on the latest backtest.

    Both models are scored on the challenger's out-of-time test slice (logged with its run): the
    latest snapshots whose outcomes were known at its as_of. The challenger must match or beat the
    champion on AUC *and* capture at 10 %. ``force`` skips the comparison and needs a ``reason``;
    both are recorded as tags on the model version.
    """
    if force and not (reason and reason.strip()):
        raise UsageError("--force needs --reason TEXT: a forced promotion must say why.")
    settings = settings or get_settings()
    cli = client(settings)
    name = settings.mlflow.model_name
    chall = _version_by_alias(cli, name, CHALLENGER)
    if chall is None:
        raise ModelError(
            f"no challenger model ({name}@{CHALLENGER}) to promote; run `riskengine train` first"
        )
    champ = _version_by_alias(cli, name, CHAMPION)
    result = Promotion(
        False, str(chall.version), None if champ is None else str(champ.version), force, reason
    )
    if champ is not None and str(champ.version) == str(chall.version):
        result.message = f"version {chall.version} is already the champion"
        return result
    if champ is not None:
        try:
            with _downloaded(run_id=chall.run_id, path=BACKTEST_ARTIFACT) as file:
                data = pl.read_parquet(file)
        except Exception as exc:  # noqa: BLE001 - any store error means: no backtest to compare on
            raise ModelError(
                f"the challenger (version {chall.version}) has no readable backtest data "
                f"({BACKTEST_ARTIFACT} of run {chall.run_id}): retrain it, or use --force --reason TEXT"
            ) from exc
        challenger_model = _load_version(cli, name, chall)
        champion_model = _load_version(cli, name, champ)
        result.backtest["challenger"] = backtest_metrics(challenger_model, data)
        try:
            result.backtest["champion"] = backtest_metrics(champion_model, data)
        except ModelError as exc:
            if not force:
                raise ModelError(
                    f"the champion (version {champ.version}) cannot score the challenger's backtest "
                    f"({exc}); compare by hand and use --force --reason TEXT"
                ) from exc
        c, b = result.backtest["challenger"], result.backtest.get("champion")
        better = b is not None and at_least_as_good(c, b)
        if not better and not force and b is not None:
            result.message = (
                f"challenger version {chall.version} is not at least as good as champion version "
                f"{champ.version} on the backtest (AUC {c['auc']:.4f} vs {b['auc']:.4f}, capture "
                f"at 10% {c['capture_10']:.4f} vs {b['capture_10']:.4f}); champion unchanged"
            )
            cli.set_model_version_tag(name, str(chall.version), "promotion.refused", result.message)
            return result
    cli.set_registered_model_alias(name, CHAMPION, str(chall.version))
    tags: dict[str, str] = {
        "promotion.forced": str(force).lower(),
        "promotion.previous_champion": result.champion_before or "-",
    }
    if reason:
        tags["promotion.reason"] = reason
    for who, values in result.backtest.items():
        for metric, figure in values.items():
            tags[f"promotion.backtest.{who}.{metric}"] = f"{figure:.6f}"
    for key, text in tags.items():
        cli.set_model_version_tag(name, str(chall.version), key, text)
    result.promoted = True
    result.message = (
        f"champion is now version {chall.version}"
        + (f" (was {champ.version})" if champ is not None else " (first champion)")
        + (f"; forced: {reason}" if force else "")
    )
    return result
