"""Per-enterprise work on a Dask cluster: features and grades of a lake, one task per part.

The enterprises are split into parts by a stable hash of ``enterprise_id`` (``riskengine.lake.buckets``;
a bucketed lake's parts are its bucket folders, so a task reads only its slice of every table). Each
task runs the same Polars code as the single-process path on its part; the outputs are identical
(CONTRACT §8). Two features look across enterprises and are handled explicitly:

- inspector strictness (an inspector's record over every enterprise): one task computes the table
  from every inspection; every part uses it;
- associations (a legal representative's other enterprises, which may sit in other parts): each part
  returns its representatives' totals, the totals are added up once, and each part finishes its
  association features from the whole city's totals.

Flow: strictness → assemble every part (written to the work folder) → add up the representatives'
totals → finish every part (features) or finish, grade and explain it (the model is broadcast once) →
the client concatenates the parts' files into the output, written atomically. A part's result is
written under a fixed name with an atomic rename, so a task retried after a lost worker overwrites
its own file: nothing is lost or doubled.

Row order equals the single-process run's: a bucketed lake is read bucket by bucket by both paths;
for a lake in plain files every part carries each enterprise's row number in the enterprises table
and the client sorts by it.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features import associations
from features.asof import AS_OF, KEY
from features.build import assemble, engine_for, finish
from features.inspections import population_rates, strictness_table
from models.artifact import CreditModel
from models.scoring import active_enterprises, score_features
from models.train_config import TrainConfig, snapshot_dates
from riskengine.core import exports
from riskengine.core.config import Settings
from riskengine.core.contract import TABLES
from riskengine.core.errors import NotFoundError, UsageError
from riskengine.core.files import atomic_write
from riskengine.core.progress import progress
from riskengine.core.store import Store
from riskengine.lake import buckets
from riskengine.lake.layout import load_tables, scan_files, scan_table, table_files
from riskengine.supervision.policy import WarningPolicy
from riskengine.workflows.scoring import load_champion, previous_from_store, write_grades
from riskengine.workflows.warnings import RAISED_SCHEMA, Evaluator, evaluate_warnings

ROWS_PER_PART = 250_000
"""Without ``--partitions``, a lake in plain files is split so that a part holds about this many
enterprises (and at least two parts per worker)."""

_ROW = "_erow"

log = logging.getLogger(__name__)


# --- where the cluster is -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterSpec:
    """``local`` / ``local:WORKERS`` (a LocalCluster of worker processes here) or ``tcp://HOST:PORT``."""

    address: str | None
    workers: int | None

    @classmethod
    def parse(cls, text: str) -> ClusterSpec:
        text = text.strip()
        if text.startswith("tcp://"):
            host, _, port = text[len("tcp://"):].rpartition(":")
            if not host or not port.isdigit():
                raise UsageError(f"--cluster tcp://HOST:PORT needs a host and a port; got {text!r}")
            return cls(address=text, workers=None)
        if text == "local":
            return cls(address=None, workers=min(os.cpu_count() or 1, 4))
        if text.startswith("local:"):
            raw = text[len("local:"):]
            if raw.isdigit() and int(raw) >= 1:
                return cls(address=None, workers=int(raw))
            raise UsageError(f"--cluster local:WORKERS needs a positive whole number; got {text!r}")
        raise UsageError(f"--cluster must be local, local:WORKERS or tcp://HOST:PORT; got {text!r}")


@contextmanager
def connect(spec: ClusterSpec, *, memory_limit: str | None = None) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``spec``; a local cluster is started here and closed after."""
    from dask.distributed import Client, LocalCluster  # noqa: PLC0415 - heavy

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout="20s")
        except OSError as exc:
            raise UsageError(f"no Dask scheduler answers at {spec.address} ({exc})") from exc
        try:
            yield client
        finally:
            client.close()
        return
    try:
        import bokeh  # noqa: F401, PLC0415 - the dashboard needs it; heavy

        dashboard: str | None = "127.0.0.1:8787"
    except ImportError:
        dashboard = None
    cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                           memory_limit=memory_limit or "auto", dashboard_address=dashboard,
                           host="127.0.0.1", silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# --- one job ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What every task needs to find its part: the lake, the parts, the dates and a work folder."""

    lake: Path
    parts: int
    bucketed: bool
    dates: tuple[date, ...]
    work: Path
    half_life_days: float = 180.0
    crash_once: Path | None = None  # fault injection for tests: the first try of part 0 kills its worker


@dataclass
class ClusterReport:
    """What a cluster run did: parts, rows written, peak memory per worker process (bytes)."""

    parts: int
    rows: int
    peak_rss_per_worker: dict[str, int] = field(default_factory=dict)
    dashboard: str | None = None
    grade_counts: dict[str, int] = field(default_factory=dict)


def plan_parts(lake: Path, partitions: int | None, workers: int) -> tuple[int, bool]:
    """(parts, bucketed): a bucketed lake's own bucket count, else ``partitions`` or a size rule."""
    n_buckets = buckets.lake_buckets(lake)
    if n_buckets is not None:
        if partitions is not None and partitions != n_buckets:
            raise UsageError(f"{lake} is laid out in {n_buckets} buckets; --partitions must be "
                             f"{n_buckets} or left out; got {partitions}")
        return n_buckets, True
    if partitions is not None:
        return buckets.check_buckets(partitions), False
    n = scan_table(lake, "enterprises").select(pl.len()).collect().item()
    return max(2 * max(workers, 1), math.ceil(n / ROWS_PER_PART)), False


def part_tables(job: Job, part: int) -> dict[str, pl.LazyFrame]:
    """Every contract table restricted to one part's enterprises (tables without ``enterprise_id``,
    such as credit repairs, whole: they are small and join through a part's own records)."""
    out: dict[str, pl.LazyFrame] = {}
    folder = buckets.folder_name(part)
    for name, spec in TABLES.items():
        if KEY not in spec.schema:
            out[name] = scan_table(job.lake, name)
        elif job.bucketed:
            out[name] = scan_files([f for f in table_files(job.lake, name) if f.parent.name == folder], name)
        else:
            out[name] = scan_table(job.lake, name).filter(buckets.bucket_expr(KEY, job.parts) == part)
    return out


def _row_numbers(job: Job, part: int) -> pl.DataFrame:
    """(enterprise_id, _erow): the part's enterprises with their row in the whole enterprises table."""
    return (scan_table(job.lake, "enterprises").select(KEY).with_row_index(_ROW)
            .filter(buckets.bucket_expr(KEY, job.parts) == part).collect())


def _write(frame: pl.DataFrame, path: Path) -> None:
    atomic_write(path, frame.write_parquet)


# --- the tasks (run on the workers) --------------------------------------------------------------------


def _strictness_task(job: Job) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cross-enterprise inspection tables: inspector strictness and the population's rates."""
    insp = scan_table(job.lake, "inspections")
    return (strictness_table(insp, list(job.dates)).collect(),
            population_rates(insp, list(job.dates)).collect())


def _assemble_task(job: Job, part: int, whole: tuple[pl.DataFrame, pl.DataFrame]) -> pl.DataFrame:
    """Assemble one part's features (written to the work folder); return its representatives' totals."""
    strictness, rates = whole
    frame, rows = assemble(part_tables(job, part), list(job.dates), half_life_days=job.half_life_days,
                           strictness=strictness.lazy(), rates=rates.lazy())
    assembled = frame.collect(engine=engine_for(rows))  # type: ignore[call-overload]
    _write(assembled, job.work / f"assembled-{part:04d}.parquet")
    return associations.totals(assembled.lazy()).collect()


def _finished(job: Job, part: int, totals: pl.DataFrame) -> pl.DataFrame:
    return finish(pl.scan_parquet(job.work / f"assembled-{part:04d}.parquet"), totals.lazy()).collect()


def _features_task(job: Job, part: int, totals: pl.DataFrame) -> int:
    frame = _finished(job, part, totals)
    if not job.bucketed:
        frame = frame.join(_row_numbers(job, part), on=KEY, how="left", maintain_order="left")
    _write(frame, job.work / f"out-{part:04d}.parquet")
    return frame.height


def _score_task(job: Job, part: int, totals: pl.DataFrame, model: CreditModel,
                previous: Path | None, settings: Settings) -> int:
    if job.crash_once is not None and part == 0 and not job.crash_once.exists():
        job.crash_once.touch()
        os._exit(1)  # a worker lost mid-task: the scheduler must run this part again elsewhere
    tables = part_tables(job, part)
    as_of = job.dates[0]
    active = active_enterprises(tables, as_of)
    features = _finished(job, part, totals).filter(pl.col(KEY).is_in(active[KEY].implode()))
    prev = None
    if previous is not None:
        prev = pl.read_parquet(previous).filter(pl.col(KEY).is_in(active[KEY].implode()))
    grades = score_features(model, features, prev, settings, enterprises=active, tables=tables) \
        if features.height else None
    if grades is None:
        return 0
    if not job.bucketed:
        grades = grades.join(_row_numbers(job, part), on=KEY, how="left", maintain_order="left")
    _write(grades, job.work / f"out-{part:04d}.parquet")
    return grades.height


def _warnings_task(job: Job, part: int, policy: WarningPolicy, grades: Path | None) -> pl.DataFrame:
    """The early warnings of one part's enterprises (every rule looks at one enterprise's records)."""
    part_grades = None
    if grades is not None:
        part_grades = (pl.scan_parquet(grades).filter(buckets.bucket_expr(KEY, job.parts) == part)
                       .collect())
    return evaluate_warnings(part_tables(job, part), job.dates[0], policy, part_grades)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# --- the client side ----------------------------------------------------------------------------------


def _run(client: Any, job: Job, finish_part: Callable[..., Any], extra: Sequence[Any],
         description: str) -> ClusterReport:
    from dask.distributed import as_completed  # noqa: PLC0415 - heavy

    token = uuid.uuid4().hex[:8]
    strict = client.submit(_strictness_task, job, key=f"strictness-{token}", retries=3)
    parts = range(job.parts)
    assembled = [client.submit(_assemble_task, job, p, strict, key=f"assemble-{p}-{token}", retries=3)
                 for p in parts]
    totals = client.submit(associations.combine, assembled, key=f"totals-{token}", retries=3)
    outs = [client.submit(finish_part, job, p, totals, *extra, key=f"finish-{p}-{token}", retries=3)
            for p in parts]
    rows = 0
    with progress(description, total=2 * job.parts) as advance:
        for _ in as_completed(assembled):
            advance()
        for fut in as_completed(outs):
            rows += int(fut.result())
            advance()
    # A worker that is just being restarted (after a crash) has no figure to give: left out.
    peaks = {str(k): int(v) for k, v in client.run(_peak_rss, on_error="ignore").items()}
    return ClusterReport(parts=job.parts, rows=rows, peak_rss_per_worker=peaks,
                         dashboard=getattr(client, "dashboard_link", None))


def _collect(job: Job, order: list[str]) -> pl.LazyFrame:
    files = sorted(job.work.glob("out-*.parquet"))
    if not files:
        return pl.LazyFrame()
    frame = pl.scan_parquet(files)
    if job.bucketed:
        return frame
    return frame.sort(order, maintain_order=True).drop(_ROW)


@contextmanager
def _job(lake: Path, dates: Sequence[date], work_parent: Path, parts: int, bucketed: bool,
         half_life_days: float, crash_once: Path | None) -> Iterator[Job]:
    work = Path(work_parent) / f".riskengine-cluster-{uuid.uuid4().hex[:12]}"
    work.mkdir(parents=True)
    try:
        yield Job(lake=Path(lake), parts=parts, bucketed=bucketed, dates=tuple(sorted(set(dates))),
                  work=work, half_life_days=half_life_days, crash_once=crash_once)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def features_on_cluster(
    client: Any, lake: Path, dates: Sequence[date], out: Path, *, partitions: int | None = None,
    half_life_days: float = 180.0,
) -> ClusterReport:
    """``compute_features`` of the whole lake, computed part by part on ``client``; written to ``out``
    (Parquet or CSV), in the single-process row order (as_of, then the enterprises table's order)."""
    load_tables(lake)  # a clear error for a folder that is not a lake
    workers = len(client.nthreads()) or 1
    parts, bucketed = plan_parts(lake, partitions, workers)
    out = Path(out)
    with _job(lake, dates, out.parent, parts, bucketed, half_life_days, None) as job:
        report = _run(client, job, _features_task, (), "features on the cluster")
        if report.rows == 0:
            raise NotFoundError(f"{lake}: no enterprise established before {min(dates)}; no features")
        _write_output(job, out, [AS_OF, _ROW], job.dates)
    return report


def score_on_cluster(
    client: Any, lake: Path, as_of: date, out: Path, model: CreditModel, settings: Settings, *,
    previous: pl.DataFrame | None = None, partitions: int | None = None,
    write: Callable[[pl.DataFrame, Path], Any] | None = None, store: Store | None = None,
    crash_once: Path | None = None,
) -> ClusterReport:
    """Grade every active enterprise of ``lake`` part by part on ``client``; the grades file ``out``
    equals ``score_enterprises``' (same rows, order and values). ``write`` writes CSV/Excel outputs
    (Parquet is streamed from the parts); ``store`` also receives the grades."""
    load_tables(lake)
    workers = len(client.nthreads()) or 1
    parts, bucketed = plan_parts(lake, partitions, workers)
    out = Path(out)
    with _job(lake, [as_of], out.parent, parts, bucketed, 180.0, crash_once) as job:
        prev_path = None
        if previous is not None and previous.height:
            prev_path = job.work / "previous.parquet"
            _write(previous, prev_path)
        model_f = client.scatter(model, broadcast=True, hash=False)
        report = _run(client, job, _score_task, (model_f, prev_path, settings),
                      "grading on the cluster")
        if report.rows == 0:
            raise NotFoundError(f"{lake}: no active enterprise established before {as_of}; nothing to grade")
        grades = _collect(job, [_ROW])
        if out.suffix.lower() == ".parquet" or write is None:
            _write_output(job, out, [_ROW], job.dates)
        else:
            write(grades.collect(), out)
        counts = grades.group_by("grade").agg(pl.len()).collect()
        report.grade_counts = dict(zip(counts["grade"].to_list(), counts["len"].to_list(), strict=True))
        if store is not None:
            store.save_grades(grades.collect())
    return report


def score_lake_on_cluster(
    spec: ClusterSpec, lake: Path, as_of: date, out: Path, settings: Settings, *,
    previous: pl.DataFrame | None = None, partitions: int | None = None, save: bool = True,
    memory_limit: str | None = None, on_connect: Callable[[str | None], None] | None = None,
) -> ClusterReport:
    """``riskengine score --cluster``: the champion, the store's previous grades and the grades file,
    with the grading done on the cluster ``spec``."""
    model = load_champion(settings)
    if previous is None:
        previous = previous_from_store(settings, as_of)
    with connect(spec, memory_limit=memory_limit) as client:
        if on_connect is not None:
            on_connect(getattr(client, "dashboard_link", None))
        return score_on_cluster(client, lake, as_of, out, model, settings, previous=previous,
                                partitions=partitions, write=write_grades,
                                store=Store(settings.store_file) if save else None)


def features_lake_on_cluster(
    spec: ClusterSpec, lake: Path, dates: Sequence[date], out: Path, *, partitions: int | None = None,
    half_life_days: float = 180.0, memory_limit: str | None = None,
    on_connect: Callable[[str | None], None] | None = None,
) -> ClusterReport:
    """``riskengine features --cluster``."""
    with connect(spec, memory_limit=memory_limit) as client:
        if on_connect is not None:
            on_connect(getattr(client, "dashboard_link", None))
        return features_on_cluster(client, lake, dates, out, partitions=partitions,
                                   half_life_days=half_life_days)


def training_features_on_cluster(
    spec: ClusterSpec, lake: Path, known_before: date, config: TrainConfig, *,
    partitions: int | None = None, memory_limit: str | None = None,
    on_connect: Callable[[str | None], None] | None = None,
) -> pl.DataFrame:
    """The features ``train_model`` needs (``snapshot_dates``), built on the cluster ``spec``.

    Training itself stays in one process: it samples enterprises to a size one machine handles
    (``TrainConfig.max_train_rows``), so ``lightgbm.dask`` is not needed.
    """
    dates = snapshot_dates(known_before, config)
    out = Path(lake).resolve().parent / f".riskengine-train-features-{uuid.uuid4().hex[:12]}.parquet"
    try:
        features_lake_on_cluster(spec, lake, dates, out, partitions=partitions, memory_limit=memory_limit,
                                 on_connect=on_connect)
        return pl.read_parquet(out)
    finally:
        out.unlink(missing_ok=True)


def warnings_on_cluster(client: Any, lake: Path, as_of: date, policy: WarningPolicy,
                        grades: pl.DataFrame | None, *, partitions: int | None = None) -> pl.DataFrame:
    """``evaluate_warnings`` of the whole lake, part by part on ``client``: the same warnings, in the
    same order (district, rule, enterprise, subject)."""
    load_tables(lake)
    workers = len(client.nthreads()) or 1
    parts, bucketed = plan_parts(lake, partitions, workers)
    # The work folder sits beside the lake: a remote cluster's workers see it where they see the lake.
    with _job(lake, [as_of], Path(lake).resolve().parent, parts, bucketed, 180.0, None) as job:
        grades_path = None
        if grades is not None and grades.height:
            grades_path = job.work / "grades.parquet"
            _write(grades, grades_path)
        token = uuid.uuid4().hex[:8]
        futures = [client.submit(_warnings_task, job, p, policy, grades_path, key=f"warnings-{p}-{token}",
                                 retries=3) for p in range(parts)]
        raised = []
        with progress("warnings on the cluster", total=parts) as advance:
            for fut in futures:
                raised.append(fut.result())
                advance()
    if not raised:
        return pl.DataFrame(schema=RAISED_SCHEMA)
    return pl.concat(raised).sort("district", "rule", "enterprise_id", "subject")


@contextmanager
def warnings_evaluator(spec: ClusterSpec, *, partitions: int | None = None,
                       memory_limit: str | None = None,
                       on_connect: Callable[[str | None], None] | None = None) -> Iterator[Evaluator]:
    """An ``Evaluator`` for ``run_warnings`` that evaluates on the cluster ``spec`` (connected while
    the context is open)."""
    with connect(spec, memory_limit=memory_limit) as client:
        if on_connect is not None:
            on_connect(getattr(client, "dashboard_link", None))

        def evaluate(lake: Path, as_of: date, policy: WarningPolicy,
                     grades: pl.DataFrame | None) -> pl.DataFrame:
            return warnings_on_cluster(client, lake, as_of, policy, grades, partitions=partitions)

        yield evaluate


def _write_output(job: Job, out: Path, order: list[str], dates: Sequence[date]) -> None:
    """The parts' files as one output file (Parquet, or CSV for features), in the single process's
    row order, written atomically.

    A bucketed lake's parts are already in that order, date by date: they are copied row group by
    row group, so the client holds one part's rows of one date at a time, whatever the city's size.
    A lake in plain files is sorted by the enterprises' rows in memory (such lakes are small).
    """
    files = sorted(job.work.glob("out-*.parquet"))
    if not job.bucketed or out.suffix.lower() == ".csv":
        frame = _collect(job, order)
        if out.suffix.lower() == ".csv":
            safe = exports.csv_safe_lazy(frame)
            atomic_write(out, lambda tmp: safe.sink_csv(tmp, quote_style="non_numeric"))
        else:
            atomic_write(out, frame.sink_parquet)
        return
    import pyarrow.parquet as pq  # noqa: PLC0415 - only the streaming copy needs it

    def copy(tmp: Path) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            for day in sorted(dates):
                for path in files:
                    table = pq.read_table(path, filters=[(AS_OF, "=", day)]) if len(dates) > 1 \
                        else pq.read_table(path)
                    if table.num_rows == 0:
                        continue
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                    writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(out, copy)
