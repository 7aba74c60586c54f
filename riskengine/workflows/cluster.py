"""Per-enterprise work on a Dask cluster: features and grades of a lake, one task per part.

The enterprises are split into parts by a stable hash of ``enterprise_id`` (``riskengine.lake.buckets``;
a bucketed lake's parts are its bucket folders, so a task reads only its slice of every table). Each
task runs the same Polars code as the single-process path on its part; the outputs are identical
(CONTRACT §8). Two features look across enterprises and are handled explicitly:

- inspector strictness and the population's inspection rates (an inspector's record over every
  enterprise): one task computes the tables from every inspection, without the voided ones exactly
  as one process drops them (``features.build.whole_city_tables``); every part uses them. Every part
  reads the record voids whole (``WHOLE``);
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
and the client merges the sorted parts by it a batch at a time (``merged``), so its memory for the
output stays bounded whatever the city's size.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from features import associations
from features.asof import AS_OF, KEY
from features.build import assemble, engine_for, finish, whole_city_tables
from models.artifact import CreditModel
from models.scoring import active_enterprises, score_features
from models.train_config import TrainConfig, snapshot_dates
from riskengine.core.config import Settings
from riskengine.core.errors import NotFoundError, UsageError
from riskengine.core.progress import progress
from riskengine.core.store import Store
from riskengine.lake.layout import load_tables, scan_table
from riskengine.supervision.policy import WarningPolicy
from riskengine.workflows.cases import mark_disputed
from riskengine.workflows.cluster_parts import (
    ROW,
    ClusterReport,
    Job,
    ordered_chunks,
    part_batches,
    part_tables,
    plan_parts,
    row_numbers,
    write_frame,
    write_output,
)
from riskengine.workflows.explain import check_jsonl, explanation_lines, write_jsonl
from riskengine.workflows.scoring import load_champion, previous_from_store, write_grades
from riskengine.workflows.warnings import RAISED_SCHEMA, Evaluator, evaluate_warnings

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
def connect(spec: ClusterSpec, *, memory_limit: str | None = None,
            on_connect: Callable[[str | None], None] | None = None) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``spec``; a local cluster is started here and closed after.

    ``on_connect`` is told the dashboard's address once connected, or None when there is no dashboard
    (a local cluster needs ``bokeh`` for it; without it Dask's HTTP server has no pages to show, and
    it takes a free port rather than 8787).
    """
    from dask.distributed import Client, LocalCluster  # noqa: PLC0415 - heavy

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout="20s")
        except OSError as exc:
            raise UsageError(f"no Dask scheduler answers at {spec.address} ({exc})") from exc
        try:
            if on_connect is not None:
                on_connect(getattr(client, "dashboard_link", None))
            yield client
        finally:
            client.close()
        return
    try:
        import bokeh  # noqa: F401, PLC0415 - the dashboard needs it; heavy

        dashboard = True
    except ImportError:
        dashboard = False
    cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                           memory_limit=memory_limit or "auto",
                           dashboard_address="127.0.0.1:8787" if dashboard else "127.0.0.1:0",
                           host="127.0.0.1", silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        if on_connect is not None:
            on_connect(client.dashboard_link if dashboard else None)
        yield client
    finally:
        client.close()
        cluster.close()


# --- the tasks (run on the workers) --------------------------------------------------------------------


def _strictness_task(job: Job) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cross-enterprise inspection tables: inspector strictness and the population's rates, over
    every inspection but the voided ones (``whole_city_tables``)."""
    tables = {name: scan_table(job.lake, name) for name in ("inspections", "record_voids")}
    strictness, rates = whole_city_tables(tables, list(job.dates))
    return strictness.collect(), rates.collect()


def _assemble_task(job: Job, part: int, whole: tuple[pl.DataFrame, pl.DataFrame]) -> pl.DataFrame:
    """Assemble one part's features (written to the work folder); return its representatives' totals."""
    strictness, rates = whole
    frame, rows = assemble(part_tables(job, part), list(job.dates), half_life_days=job.half_life_days,
                           strictness=strictness.lazy(), rates=rates.lazy())
    assembled = frame.collect(engine=engine_for(rows))  # type: ignore[call-overload]
    write_frame(assembled, job.work / f"assembled-{part:04d}.parquet")
    return associations.totals(assembled.lazy()).collect()


def _finished(job: Job, part: int, totals: pl.DataFrame) -> pl.DataFrame:
    return finish(pl.scan_parquet(job.work / f"assembled-{part:04d}.parquet"), totals.lazy()).collect()


def _features_task(job: Job, part: int, totals: pl.DataFrame) -> int:
    return _write_part(job, part, _finished(job, part, totals))


def _grade_part(job: Job, part: int, totals: pl.DataFrame, model: CreditModel, previous: Path | None,
                settings: Settings) -> tuple[pl.DataFrame | None, dict[str, pl.LazyFrame]]:
    """One part's grades (None when it grades no one) and the part's tables."""
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
    return grades, tables


def _write_part(job: Job, part: int, frame: pl.DataFrame) -> int:
    """Write one part's output rows under the part's fixed name. For a lake in plain files each row
    carries its place in the single process's order (``ROW``: as_of, then the enterprise's row in the
    enterprises table, packed into one Int64), and the part is sorted by it, so the client merges the
    parts (``merged``) a batch at a time."""
    if not job.bucketed:
        frame = frame.join(row_numbers(job, part), on=KEY, how="left", maintain_order="left")
        if AS_OF in frame.columns:
            days = pl.col(AS_OF).cast(pl.Int32).cast(pl.Int64) + 2**20
            frame = frame.with_columns((days * 2**32 + pl.col(ROW)).alias(ROW))
        frame = frame.sort(ROW)
    write_frame(frame, job.work / f"out-{part:04d}.parquet")
    return frame.height


def _score_task(job: Job, part: int, totals: pl.DataFrame, model: CreditModel,
                previous: Path | None, settings: Settings) -> int:
    grades, _ = _grade_part(job, part, totals, model, previous, settings)
    return 0 if grades is None else _write_part(job, part, grades)


def _explain_task(job: Job, part: int, totals: pl.DataFrame, model: CreditModel,
                  previous: Path | None, settings: Settings) -> int:
    """One part's explanations (``explanation_lines``: the grades and the records behind the reasons)."""
    grades, tables = _grade_part(job, part, totals, model, previous, settings)
    if grades is None:
        return 0
    return _write_part(job, part, explanation_lines(grades, tables, job.dates[0]))


def _warnings_task(job: Job, part: int, policy: WarningPolicy, grades: Path | None) -> pl.DataFrame:
    """The early warnings of one part's enterprises (every rule looks at one enterprise's records)."""
    part_grades = None
    if grades is not None:
        kept = list(part_batches([grades], job.parts, part))
        part_grades = pl.concat(kept) if kept else pl.read_parquet(grades, n_rows=0)
    return evaluate_warnings(part_tables(job, part), job.dates[0], policy, part_grades)


def peak_rss() -> int:
    """This process's peak resident memory in bytes: Linux's ``VmHWM``, the high-water mark of its own
    memory map. ``ru_maxrss`` is not used where ``VmHWM`` exists: Linux carries the parent's peak over
    into a spawned child's ``ru_maxrss``, so a small child of a big process reports the big one's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux, bytes on macOS


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
    with progress(description, total=2 * job.parts, lines=True) as advance:
        for _ in as_completed(assembled):
            advance()
        for fut in as_completed(outs):
            rows += int(fut.result())
            advance()
    # A worker that is just being restarted (after a crash) has no figure to give: left out.
    peaks = {str(k): int(v) for k, v in client.run(peak_rss, on_error="ignore").items()}
    return ClusterReport(parts=job.parts, rows=rows, peak_rss_per_worker=peaks,
                         dashboard=getattr(client, "dashboard_link", None), bucketed=job.bucketed)


def _collect(job: Job) -> pl.LazyFrame:
    """Every part's output rows, lazily, in the single process's order (sorted in memory for a lake in
    plain files: what a CSV or Excel grades file needs whole anyway)."""
    files = sorted(job.work.glob("out-*.parquet"))
    if not files:
        return pl.LazyFrame()
    frame = pl.scan_parquet(files)
    if job.bucketed:
        return frame
    return frame.sort(ROW).drop(ROW)


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
        write_output(job, out)
    return report


def _grade_on_cluster(client: Any, lake: Path, as_of: date, out: Path, model: CreditModel,
                      settings: Settings, previous: pl.DataFrame | None, partitions: int | None,
                      crash_once: Path | None, task: Callable[..., int], description: str,
                      deliver: Callable[[Job, ClusterReport], None]) -> ClusterReport:
    """Grade the lake part by part with ``task`` (the model broadcast once), then ``deliver`` the parts'
    files while the work folder exists."""
    load_tables(lake)
    workers = len(client.nthreads()) or 1
    parts, bucketed = plan_parts(lake, partitions, workers)
    with _job(lake, [as_of], Path(out).parent, parts, bucketed, 180.0, crash_once) as job:
        prev_path = None
        if previous is not None and previous.height:
            prev_path = job.work / "previous.parquet"
            write_frame(previous, prev_path)
        model_f = client.scatter(model, broadcast=True, hash=False)
        report = _run(client, job, task, (model_f, prev_path, settings), description)
        if report.rows == 0:
            raise NotFoundError(f"{lake}: no active enterprise established before {as_of}; nothing to grade")
        deliver(job, report)
    return report


def score_on_cluster(
    client: Any, lake: Path, as_of: date, out: Path, model: CreditModel, settings: Settings, *,
    previous: pl.DataFrame | None = None, partitions: int | None = None,
    write: Callable[[pl.DataFrame, Path], Any] | None = None, store: Store | None = None,
    crash_once: Path | None = None,
) -> ClusterReport:
    """Grade every active enterprise of ``lake`` part by part on ``client``; the grades file ``out``
    equals ``score_enterprises``' (same rows, order and values). ``write`` writes CSV/Excel outputs
    (with the ``disputed`` column, as ``riskengine score`` writes them; Parquet is streamed from the
    parts); ``store`` also receives the grades, a chunk at a time."""
    out = Path(out)

    def deliver(job: Job, report: ClusterReport) -> None:
        if out.suffix.lower() == ".parquet" or write is None:
            write_output(job, out)
        else:
            # As one process writes it: officers' files say which grades are disputed.
            write(mark_disputed(_collect(job).collect(), settings), out)
        counts = (pl.scan_parquet(sorted(job.work.glob("out-*.parquet"))).group_by("grade").agg(pl.len())
                  .collect(engine="streaming"))
        report.grade_counts = dict(zip(counts["grade"].to_list(), counts["len"].to_list(), strict=True))
        if store is not None:
            store.save_grades_chunks(ordered_chunks(job))  # a chunk at a time, one transaction

    return _grade_on_cluster(client, lake, as_of, out, model, settings, previous, partitions, crash_once,
                             _score_task, "grading on the cluster", deliver)


def explain_on_cluster(
    client: Any, lake: Path, as_of: date, out: Path, model: CreditModel, settings: Settings, *,
    previous: pl.DataFrame | None = None, partitions: int | None = None, crash_once: Path | None = None,
) -> ClusterReport:
    """``explain_all`` part by part on ``client``: every active enterprise's explanation, one JSON
    text a line in ``out``, the same lines in the same order as one process writes."""
    out = check_jsonl(out)

    def deliver(job: Job, report: ClusterReport) -> None:
        write_jsonl((frame["explanation"] for frame in ordered_chunks(job)), out)

    return _grade_on_cluster(client, lake, as_of, out, model, settings, previous, partitions, crash_once,
                             _explain_task, "explaining on the cluster", deliver)


def explain_lake_on_cluster(
    spec: ClusterSpec, lake: Path, as_of: date, out: Path, settings: Settings, *,
    partitions: int | None = None, memory_limit: str | None = None,
    on_connect: Callable[[str | None], None] | None = None,
) -> ClusterReport:
    """``riskengine explain --out FILE.jsonl --cluster``: the champion and the store's previous grades,
    as ``explain_all`` uses them."""
    model = load_champion(settings)
    previous = previous_from_store(settings, as_of)
    with connect(spec, memory_limit=memory_limit, on_connect=on_connect) as client:
        return explain_on_cluster(client, lake, as_of, out, model, settings, previous=previous,
                                  partitions=partitions)


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
    with connect(spec, memory_limit=memory_limit, on_connect=on_connect) as client:
        return score_on_cluster(client, lake, as_of, out, model, settings, previous=previous,
                                partitions=partitions, write=write_grades,
                                store=Store(settings.store_file) if save else None)


def features_lake_on_cluster(
    spec: ClusterSpec, lake: Path, dates: Sequence[date], out: Path, *, partitions: int | None = None,
    half_life_days: float = 180.0, memory_limit: str | None = None,
    on_connect: Callable[[str | None], None] | None = None,
) -> ClusterReport:
    """``riskengine features --cluster``."""
    with connect(spec, memory_limit=memory_limit, on_connect=on_connect) as client:
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
            write_frame(grades, grades_path)
        token = uuid.uuid4().hex[:8]
        futures = [client.submit(_warnings_task, job, p, policy, grades_path, key=f"warnings-{p}-{token}",
                                 retries=3) for p in range(parts)]
        raised = []
        with progress("warnings on the cluster", total=parts, lines=True) as advance:
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
    with connect(spec, memory_limit=memory_limit, on_connect=on_connect) as client:

        def evaluate(lake: Path, as_of: date, policy: WarningPolicy,
                     grades: pl.DataFrame | None) -> pl.DataFrame:
            return warnings_on_cluster(client, lake, as_of, policy, grades, partitions=partitions)

        yield evaluate

