"""The Dask path (CONTRACT §8): same features and grades as one process, whatever the parts.

One LocalCluster of two worker processes serves the module. The small city has legal
representatives whose enterprises hash into different parts, so the association features (the one
join across parts) are checked where it matters; a worker killed mid-task changes nothing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features import compute_features
from models.train import TrainConfig, train_model
from riskengine.core.config import Settings
from riskengine.core.errors import UsageError
from riskengine.lake import buckets
from riskengine.lake.ingest import ingest
from riskengine.lake.layout import load_tables
from riskengine.workflows.cluster import ClusterSpec, features_on_cluster, score_on_cluster
from riskengine.workflows.scoring import score_enterprises

AS_OF = date(2025, 7, 1)


def test_bucket_hash_is_fnv1a_of_the_utf8_bytes() -> None:
    # Published 32-bit FNV-1a test vectors (the hash's authors' list), independent of the code.
    ids = pl.Series(["", "a", "foobar"])
    assert buckets.fnv1a(ids).tolist() == [0x811C9DC5, 0xE40C292C, 0xBF9CF968]


def test_bucket_of_is_the_same_for_an_id_wherever_it_stands() -> None:
    ids = pl.Series([f"91350100M{i:09d}" for i in range(500)] + ["企业甲", "x"])
    whole = buckets.bucket_of(ids, 7)
    assert whole.slice(300, 202).to_list() == buckets.bucket_of(ids.slice(300, 202), 7).to_list()
    assert set(whole.to_list()) == set(range(7))


def test_split_keeps_every_row_once_in_order() -> None:
    frame = pl.DataFrame({"enterprise_id": [f"e{i}" for i in range(100)], "n": list(range(100))})
    parts = buckets.split(frame, 4)
    joined = pl.concat([p for _, p in parts])
    assert joined.sort("n").equals(frame)
    for b, part in parts:
        assert part["n"].is_sorted()
        assert set(buckets.bucket_of(part["enterprise_id"], 4).to_list()) == {b}


def test_sorted_parts_merge_in_order_holding_a_batch_of_each(tmp_path) -> None:
    import random

    from riskengine.workflows.cluster_parts import merged

    rng = random.Random(5)
    owner = [rng.randrange(4) for _ in range(3000)]  # parts 0-3, interleaved; part 3 may hold few
    files = []
    for part in range(5):  # part 4 is empty
        keys = [k for k, o in enumerate(owner) if o == part]
        files.append(tmp_path / f"out-{part}.parquet")
        pl.DataFrame({"k": keys, "v": [f"row {k}" for k in keys]}, schema={"k": pl.Int64, "v": pl.String}
                     ).write_parquet(files[-1], row_group_size=50)
    chunks = list(merged(files, "k", 40))
    assert len(chunks) > 3000 // (5 * 40)  # many steps, none holding more than a batch of each part
    assert max(c.height for c in chunks) <= 5 * 40
    whole = pl.concat(chunks)
    assert whole["k"].to_list() == list(range(3000))
    assert whole["v"].to_list() == [f"row {k}" for k in range(3000)]


def test_a_plain_lake_part_is_read_a_batch_at_a_time_as_a_filtered_scan(small_lake, tmp_path,
                                                                         monkeypatch) -> None:
    from riskengine.lake.layout import scan_table, table_files
    from riskengine.workflows import cluster_parts

    monkeypatch.setattr(cluster_parts, "READ_ROWS", 100)  # many batches per file
    job = cluster_parts.Job(lake=small_lake, parts=3, bucketed=False, dates=(AS_OF,), work=tmp_path)
    rows = scan_table(small_lake, "enterprises").select("enterprise_id").with_row_index("_erow")
    for part in range(3):
        mine = buckets.bucket_expr("enterprise_id", 3) == part
        for table in ("inspections", "enterprises"):
            got = cluster_parts.read_part(table_files(small_lake, table), table, 3, part)
            assert got.equals(scan_table(small_lake, table).filter(mine).collect())
        want = rows.filter(mine).select("enterprise_id", "_erow").collect()
        assert cluster_parts.row_numbers(job, part).equals(want)
        assert want["_erow"].max() > 100  # numbered across batches


@pytest.mark.parametrize("text", ["", "local:0", "local:x", "tcp://nohost", "http://h:1", "tcp://:80"])
def test_a_bad_cluster_address_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--cluster"):
        ClusterSpec.parse(text)


def test_cluster_addresses_parse() -> None:
    assert ClusterSpec.parse("local:3") == ClusterSpec(address=None, workers=3)
    remote = ClusterSpec.parse("tcp://10.1.2.3:8786")
    assert remote == ClusterSpec(address="tcp://10.1.2.3:8786", workers=None)


# --- on a LocalCluster ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                           host="127.0.0.1")
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def training(small_lake: Path):
    config = TrainConfig(snapshots=4, test_snapshots=1, max_rounds=30, baselines=False,
                         compare_selection=False, num_threads=1)
    return train_model(load_tables(small_lake), AS_OF, config=config)


@pytest.fixture(scope="module")
def model(training):
    return training.model


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def single(small_lake: Path, model, settings: Settings) -> pl.DataFrame:
    return score_enterprises(small_lake, AS_OF, model=model, settings=settings)


def _parts_of_associates(lake: Path, parts: int) -> pl.DataFrame:
    """Per legal representative with several enterprises: in how many parts they sit."""
    ent = load_tables(lake)["enterprises"].select("enterprise_id", "legal_rep_id").collect()
    return (ent.filter(pl.col("legal_rep_id").is_not_null())
            .with_columns(buckets.bucket_of(ent.filter(pl.col("legal_rep_id").is_not_null())["enterprise_id"],
                                            parts).alias("part"))
            .group_by("legal_rep_id").agg(pl.len().alias("n"), pl.col("part").n_unique().alias("parts"))
            .filter(pl.col("n") > 1))


def test_grades_on_the_cluster_equal_one_process(client, small_lake, model, settings, single,
                                                  tmp_path) -> None:
    spread = _parts_of_associates(small_lake, 3)
    assert spread.filter(pl.col("parts") > 1).height > 0  # associations really cross parts here
    out = tmp_path / "grades.parquet"
    report = score_on_cluster(client, small_lake, AS_OF, out, model, settings, partitions=3)
    got = pl.read_parquet(out)
    assert report.parts == 3 and report.rows == single.height
    assert got.equals(single)  # same rows, order, grades, scores, reasons: bit for bit
    assert set(report.peak_rss_per_worker) <= set(client.nthreads())
    assert all(peak > 0 for peak in report.peak_rss_per_worker.values())
    assert sum(report.grade_counts.values()) == single.height


def test_association_features_cross_parts_exactly(client, small_lake, tmp_path, monkeypatch) -> None:
    from riskengine.workflows import cluster_parts

    monkeypatch.setattr(cluster_parts, "MERGE_ROWS", 256)  # the client merges the 4 parts 64 rows at a time
    dates = [date(2024, 1, 1), AS_OF]
    out = tmp_path / "features.parquet"
    features_on_cluster(client, small_lake, dates, out, partitions=4)
    got = pl.read_parquet(out)
    want = compute_features(load_tables(small_lake), dates)
    # Exact for every integer, string and date column; the two float sums (severity index, mean
    # strictness) may differ in the last bits, as between Polars' engines: additions in another order.
    floats = [c for c, t in want.schema.items() if t == pl.Float64]
    assert got.drop(floats).equals(want.drop(floats))
    assert_frame_equal(got.select(floats), want.select(floats), check_exact=False, rel_tol=1e-12, abs_tol=0)
    assert got.filter(pl.col("associations__count") > 0).height > 0

    # The CSV output is merged a chunk at a time too: one header, the same rows as one process's file.
    from riskengine.core import exports

    features_on_cluster(client, small_lake, dates, tmp_path / "features.csv", partitions=4)
    exports.write_csv(want, tmp_path / "one.csv", bom=False)
    got_csv, want_csv = (pl.read_csv(tmp_path / n, infer_schema=False) for n in ("features.csv", "one.csv"))
    assert got_csv.drop(floats).equals(want_csv.drop(floats))
    assert_frame_equal(got_csv.select(floats).cast(pl.Float64), want_csv.select(floats).cast(pl.Float64),
                       check_exact=False, rel_tol=1e-12, abs_tol=0)


def test_store_and_csv_from_the_cluster_equal_one_process(client, small_lake, model, settings, single,
                                                          tmp_path) -> None:
    from riskengine.core.store import Store
    from riskengine.workflows.cases import mark_disputed
    from riskengine.workflows.scoring import write_grades

    one, many = Store(tmp_path / "one.duckdb"), Store(tmp_path / "many.duckdb")
    one.save_grades(single)
    out = tmp_path / "grades.csv"
    score_on_cluster(client, small_lake, AS_OF, out, model, settings, partitions=3, write=write_grades,
                     store=many)
    order = ["enterprise_id"]
    assert many.latest_grades(AS_OF).sort(order).equals(one.latest_grades(AS_OF).sort(order))
    write_grades(mark_disputed(single, settings), tmp_path / "single.csv")
    assert out.read_bytes() == (tmp_path / "single.csv").read_bytes()  # with the disputed column
    assert b"disputed" in out.read_bytes().splitlines()[0]


def test_grades_saved_in_chunks_are_one_save(single, tmp_path) -> None:
    from riskengine.core.errors import FatalInputError
    from riskengine.core.store import Store

    chunked, whole = Store(tmp_path / "chunked.duckdb"), Store(tmp_path / "whole.duckdb")
    assert chunked.save_grades_chunks(single.iter_slices(100)) == whole.save_grades(single)
    order = ["enterprise_id"]
    assert chunked.latest_grades(AS_OF).sort(order).equals(whole.latest_grades(AS_OF).sort(order))
    assert chunked.grade_dates() == [AS_OF]
    # An enterprise in two chunks is refused, and the transaction leaves the earlier save in place.
    with pytest.raises(FatalInputError, match="unique per as_of"):
        chunked.save_grades_chunks([single.head(5), single.slice(3, 5)])
    assert chunked.latest_grades(AS_OF).height == single.height


def test_a_worker_killed_mid_task_changes_nothing(client, small_lake, model, settings, single,
                                                  tmp_path) -> None:
    marker = tmp_path / "crashed"
    out = tmp_path / "grades.parquet"
    score_on_cluster(client, small_lake, AS_OF, out, model, settings, partitions=2, crash_once=marker)
    assert marker.exists()  # the first try of part 0 did kill its worker
    assert pl.read_parquet(out).equals(single)


def test_a_bucketed_lake_is_read_part_by_part_and_matches(client, small_city, model, settings,
                                                           tmp_path) -> None:
    lake = tmp_path / "lake"
    ingest(small_city, lake, n_buckets=3)
    assert buckets.lake_buckets(lake) == 3
    folders = sorted(p.name for p in (lake / "inspections").iterdir())
    assert folders == ["bucket=0000", "bucket=0001", "bucket=0002"]
    single = score_enterprises(lake, AS_OF, model=model, settings=settings)
    out = tmp_path / "grades.parquet"
    report = score_on_cluster(client, lake, AS_OF, out, model, settings)
    assert report.parts == 3
    assert pl.read_parquet(out).equals(single)
    with pytest.raises(UsageError, match="3 buckets"):
        score_on_cluster(client, lake, AS_OF, out, model, settings, partitions=5)


def test_buckets_apply_to_a_new_lake_only(small_city, small_lake, tmp_path) -> None:
    import shutil

    lake = tmp_path / "plain"
    shutil.copytree(small_lake, lake)
    with pytest.raises(UsageError, match="plain files"):
        ingest(small_city, lake, n_buckets=2)
    assert buckets.lake_buckets(lake) is None


def test_warnings_on_the_cluster_equal_one_process(client, small_lake, single) -> None:
    from riskengine.supervision.policy import load_policy
    from riskengine.workflows.cluster import warnings_on_cluster
    from riskengine.workflows.warnings import evaluate_warnings

    policy = load_policy().warnings
    # Two grade runs so that the grade-jump rule has something to compare across parts.
    earlier = single.select("enterprise_id", pl.lit(date(2025, 6, 1)).alias("as_of"),
                            pl.when(pl.col("grade") == "D").then(pl.lit("A")).otherwise(pl.col("grade"))
                            .alias("grade"))
    grades = pl.concat([earlier, single.select("enterprise_id", "as_of", "grade")])
    want = evaluate_warnings(load_tables(small_lake), AS_OF, policy, grades)
    got = warnings_on_cluster(client, small_lake, AS_OF, policy, grades, partitions=3)
    assert want.height > 0 and want["rule"].n_unique() > 1
    assert got.equals(want)


# --- record voids (upheld objections) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def voided_lake(small_city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small city with record voids that reach across parts (of 3): every failed inspection of
    the busiest failing inspector up to 2024-05 (their strictness is read by enterprises in every
    part), voided on 2024-06-01; and a penalty of an enterprise whose representative has enterprises
    in other parts, voided on 2025-01-15 by a void that names that representative's enterprise in
    another part (the void applies by the record's id alone)."""
    import shutil

    src = tmp_path_factory.mktemp("voided") / "src"
    shutil.copytree(small_city, src)
    insp = pl.read_csv(src / "inspections.csv", infer_schema=False)
    fails = insp.filter((pl.col("outcome") == "fail") & (pl.col("inspected_on") < "2024-05-01"))
    inspector = fails.group_by("inspector_id").len().sort("len", "inspector_id", descending=True)[0, 0]
    voided = fails.filter(pl.col("inspector_id") == inspector)
    assert voided["enterprise_id"].n_unique() > 1
    rows = [("inspections", r["inspection_id"], r["enterprise_id"], "2024-06-01")
            for r in voided.iter_rows(named=True)]

    ent = pl.read_csv(src / "enterprises.csv", infer_schema=False).select("enterprise_id", "legal_rep_id")
    ent = ent.with_columns(buckets.bucket_of(ent["enterprise_id"], 3).alias("part"))
    pen = pl.read_csv(src / "penalties.csv", infer_schema=False).filter(pl.col("decided_on") < "2024-06-01")
    pairs = (pen.join(ent, on="enterprise_id").join(ent, on="legal_rep_id", suffix="_other")
             .filter(pl.col("part") != pl.col("part_other")).sort("case_id", "enterprise_id_other"))
    assert pairs.height > 0
    rows.append(("penalties", pairs["case_id"][0], pairs["enterprise_id_other"][0], "2025-01-15"))
    voids = pl.DataFrame(rows, schema=["record_table", "record_id", "enterprise_id", "voided_on"],
                         orient="row")
    voids.with_columns(pl.format("V{}", pl.int_range(pl.len())).alias("void_id"),
                       pl.col("voided_on").alias("recorded_on"),
                       pl.lit("OBJ-1").alias("case_id")).write_csv(src / "record_voids.csv")
    lake = src.parent / "lake"
    report = ingest(src, lake)
    assert report.tables["record_voids"]["accepted"] == len(rows)
    return lake


def test_voids_count_on_the_cluster_as_in_one_process(client, small_lake, voided_lake, model, settings,
                                                       tmp_path) -> None:
    dates = [date(2024, 1, 1), date(2024, 9, 1), AS_OF]  # before both voids, between them, after both
    want = compute_features(load_tables(voided_lake), dates)
    unvoided = compute_features(load_tables(small_lake), dates)
    voids = load_tables(voided_lake)["record_voids"].collect()
    named = set(voids["enterprise_id"]) | set(
        load_tables(voided_lake)["inspections"].filter(pl.col("inspection_id").is_in(voids["record_id"].implode()))
        .collect()["enterprise_id"])
    # The voids move features of enterprises that none of them names: the cross-part effect under test.
    strict = "inspections__inspector_strictness_mean_365d"
    moved = (want.join(unvoided, on=["enterprise_id", "as_of"], suffix="_was")
             .filter(~pl.col("enterprise_id").is_in(list(named)))
             .filter(pl.col(strict) != pl.col(f"{strict}_was")))
    assert moved.height > 0 and set(moved["as_of"]) == {date(2024, 9, 1), AS_OF}

    out = tmp_path / "features.parquet"
    features_on_cluster(client, voided_lake, dates, out, partitions=3)
    got = pl.read_parquet(out)
    floats = [c for c, t in want.schema.items() if t == pl.Float64]
    assert got.drop(floats).equals(want.drop(floats))
    assert_frame_equal(got.select(floats), want.select(floats), check_exact=False, rel_tol=1e-12, abs_tol=0)

    single = score_enterprises(voided_lake, AS_OF, model=model, settings=settings)
    grades = tmp_path / "grades.parquet"
    score_on_cluster(client, voided_lake, AS_OF, grades, model, settings, partitions=3)
    assert pl.read_parquet(grades).equals(single)  # grades, scores and reasons, bit for bit


# --- explanations of every graded enterprise -----------------------------------------------------------


def test_batch_explanations_on_the_cluster_equal_one_process(client, small_lake, model, settings, single,
                                                              tmp_path) -> None:
    import json

    from riskengine.workflows.cluster import explain_on_cluster
    from riskengine.workflows.explain import explain_all, explain_with_records

    want = tmp_path / "one.jsonl"
    assert explain_all(small_lake, AS_OF, want, model=model, settings=settings) == single.height
    got = tmp_path / "cluster.jsonl"
    report = explain_on_cluster(client, small_lake, AS_OF, got, model, settings, partitions=3)
    assert report.rows == single.height
    assert got.read_bytes() == want.read_bytes()  # the same lines in the same order, byte for byte

    bodies = [json.loads(line) for line in got.read_text(encoding="utf-8").splitlines()]
    assert [b["enterprise_id"] for b in bodies] == single["enterprise_id"].to_list()
    assert [b["grade"] for b in bodies] == single["grade"].to_list()
    # An enterprise with records behind its reasons reads as `explain ID --format json` does.
    body = next(b for b in bodies if any(r["evidence"] for r in b["reasons"]))
    one, _ = explain_with_records(small_lake, body["enterprise_id"], AS_OF, model=model, settings=settings)
    assert body["reasons"] == one["reasons"]
    assert (body["grade"], body["score"], body["rule"]) == (one["grade"], one["score"], one["rule"])


# --- the commands --------------------------------------------------------------------------------------


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from riskengine.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture()
def champion(monkeypatch, model, tmp_path):
    """Commands run in a fresh home with ``model`` as the champion (the registry has its own tests)."""
    from riskengine.core.config import get_settings
    from riskengine.workflows import cluster, explain, scoring

    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path / "home"))
    for module in (cluster, scoring):
        monkeypatch.setattr(module, "load_champion", lambda settings: model)
    get_settings.cache_clear()
    yield explain
    get_settings.cache_clear()


def test_explain_command_on_a_running_cluster_writes_one_process_lines_and_says_how_it_went(
        client, champion, small_lake, model, tmp_path, capsys) -> None:
    import re

    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    n = champion.explain_all(small_lake, AS_OF, one, model=model, settings=Settings(home=tmp_path / "home"))
    code, _, err = run_cli(["explain", "--lake", str(small_lake), "--as-of", "2025-07-01", "--out", str(many),
                            "--cluster", client.scheduler.address, "--partitions", "3"], capsys)
    assert code == 0, err
    assert many.read_bytes() == one.read_bytes()
    assert f"wrote {n} explanations as of 2025-07-01 to {many} (3 parts on the cluster)" in err
    # Where it runs, how far it is (lines, as the console here is not a terminal), what it cost.
    assert re.search(r"Dask dashboard: http://127\.0\.0\.1:\d+/status", err)
    assert "explaining on the cluster: 6/6 (100%)" in err
    assert len(re.findall(r"peak memory of worker \S+: \d+\.\d\d GiB", err)) == 2
    assert "riskengine ingest --buckets 3" in err  # a lake in plain files: the way to a bucketed one


def test_a_local_cluster_without_bokeh_gives_no_dashboard_link() -> None:
    import importlib.util

    from riskengine.workflows.cluster import connect

    told: list[str | None] = []
    with connect(ClusterSpec.parse("local:1"), memory_limit="1GiB", on_connect=told.append) as c:
        assert len(c.nthreads()) == 1
    if importlib.util.find_spec("bokeh") is None:  # Dask's HTTP server alone has no pages to link
        assert told == [None]
    else:
        assert told[0] is not None and told[0].startswith("http://127.0.0.1:")


@pytest.mark.parametrize(("extra", "message"), [
    (["--cluster", "local:2"], "--cluster goes with explain --out"),
    (["--out", "x.json"], "--out must end .jsonl"),
    (["--out", "x.jsonl", "--partitions", "3"], "--partitions and --memory-limit go with --cluster"),
    (["91350100M000100Y43", "--out", "x.jsonl"], "leave ENTERPRISE_ID out"),
    (["--out", "x.jsonl", "--png", "why.png"], "--png draws one enterprise's waterfall"),
])
def test_batch_explain_usage_errors_exit_2(small_lake, capsys, extra, message) -> None:
    code, _, err = run_cli(["explain", "--lake", str(small_lake), "--as-of", "2025-07-01", *extra], capsys)
    assert code == 2 and message in err
