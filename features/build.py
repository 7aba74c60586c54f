"""``build_features``: every family of ``features.families.FAMILIES`` joined onto the population of
(enterprise_id, as_of)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from features import asof, associations, inspections, profile, severity
from features.asof import AS_OF, KEY
from features.catalog import FEATURES, FeatureSpec
from features.families import FAMILIES
from features.family import Inputs
from riskengine.core.contract import TABLES
from riskengine.core.errors import UsageError

_PROFILE = ("established_on", "registered_capital", "sector", "district", "status", associations.REP)
_CODE = "_code"
_JK = "_join_key"
_RK = "_right_key"
_ID = "_enterprise_id"
_DTYPES: dict[str, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64(), "str": pl.String()}


# Record ids and descriptive columns no feature reads: left unread, which saves reading and joining
# millions of strings (0.4 s at 2,000,000 enterprises). A family that starts to read one fails loudly.
_UNREAD: dict[str, tuple[str, ...]] = {
    "enterprises": ("name", "industry_code"),
    "inspections": ("inspection_id",),
    "sampling_tests": ("test_id", "product"),
    "penalties": ("category",),
    "recalls": ("recall_id", "product"),
    "complaints": ("complaint_id", "category"),
    "licenses": ("license_id",),
    "credit_repairs": ("repair_id",),
    "list_entries": ("reason", "removal_reason"),
    "list_removals": ("removal_id", "removal_reason"),
    "commitments": ("commitment_id",),
    "record_voids": ("void_id", "record_table", "record_id", "case_id", "reason"),
}


def _conform(tables: Mapping[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """Every contract table with exactly the contract columns the features read (absent tables and
    columns as nulls)."""
    out: dict[str, pl.LazyFrame] = {}
    for name, spec in TABLES.items():
        schema = {c: t for c, t in spec.schema.items() if c not in _UNREAD.get(name, ())}
        frame = tables.get(name)
        if frame is None:
            out[name] = pl.LazyFrame(schema=schema)
            continue
        have = frame.collect_schema().names()
        out[name] = frame.select(
            [(pl.col(c) if c in have else pl.lit(None)).cast(t).alias(c) for c, t in schema.items()]
        )
    return out


def _encode(tables: dict[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """Replace ``enterprise_id`` by a dense integer code (the enterprise's row) in every table: joins
    and group-bys on integers are several times faster than on 18-character strings. Enterprises keep
    the string as ``_enterprise_id``; event rows of unknown enterprises go.

    The tables are read and encoded here, once, in memory: families read the same table several times
    with different columns, and a lazy plan that re-joins (or caches) the tables inside the feature
    query was slower at 2,000,000 enterprises (``benchmarks/features_2m.py``). The ids of all event
    tables are looked up in one join, which builds the hash table of enterprise ids once instead of
    once per table.
    """
    frames = dict(zip(tables, pl.collect_all(list(tables.values()), engine="in-memory"), strict=True))
    ent = frames["enterprises"]
    codes = ent.select(KEY).with_row_index(_CODE)
    coded = [name for name, f in frames.items() if name != "enterprises" and KEY in f.columns]
    ids = pl.concat([frames[name].select(KEY) for name in coded])
    found = ids.join(codes, on=KEY, how="left", maintain_order="left").get_column(_CODE)
    if found.len() != ids.height:  # an event's enterprise_id matched several enterprises
        raise UsageError("enterprise_id must be unique in the enterprises table; it is not.")
    out = {"enterprises": ent.with_row_index(_CODE).rename({KEY: _ID, _CODE: KEY}).lazy()}
    offset = 0
    for name in coded:
        frame = frames[name]
        code = found.slice(offset, frame.height)
        offset += frame.height
        out[name] = frame.with_columns(code.alias(KEY)).filter(pl.col(KEY).is_not_null()).lazy()
    out.update({name: f.lazy() for name, f in frames.items() if name not in out})
    return {name: out[name] for name in tables}


def _join_key() -> pl.Expr:
    """(as_of, enterprise code) packed into one Int64 that increases along the population (ordered by
    as_of, then by enterprise row = code): days since 1970 shifted by 2**20 (21 bits, years 0-4840)
    above a 32-bit code."""
    days = pl.col(AS_OF).cast(pl.Int32).cast(pl.Int64) + 2**20
    return (days * 2**32 + pl.col(KEY).cast(pl.Int64)).alias(_JK)


def _align(slots: pl.LazyFrame, part: pl.LazyFrame) -> pl.LazyFrame:
    """``part``'s feature columns on the rows of ``slots`` (the population's sorted keys), null where
    ``part`` has no row.

    A merge of the two sorted key columns (``join_asof``, then keeping exact matches only) instead of
    a hash join that keeps the left order: the streaming engine does it about twice as fast.
    """
    cols = [c for c in part.collect_schema().names() if c not in (KEY, AS_OF)]
    right = part.with_columns(_join_key()).drop(KEY, AS_OF).sort(_JK).with_columns(pl.col(_JK).alias(_RK))
    exact = pl.col(_RK) == pl.col(_JK)
    return slots.join_asof(right, on=_JK, strategy="backward").select(
        [pl.when(exact).then(pl.col(c)).alias(c) for c in cols]
    )


def _finish(spec: FeatureSpec) -> pl.Expr:
    col = pl.col(spec.name).cast(_DTYPES[spec.dtype])
    if spec.fill is not None:
        col = col.fill_null(pl.lit(spec.fill).cast(_DTYPES[spec.dtype]))
    return col.alias(spec.name)


IN_MEMORY_BELOW = 1_000_000
"""``compute_features`` collects with Polars' in-memory engine below this many (enterprise, as_of) rows
and with the streaming engine from there on: the in-memory engine is faster on small cities, streaming
faster and leaner at millions of rows (the figures: ``benchmarks/features_monthly.py`` and
``benchmarks/features_2m.py``)."""


def compute_features(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], *, half_life_days: float = 180.0
) -> pl.DataFrame:
    """``build_features`` collected, with the Polars engine that suits its size (``IN_MEMORY_BELOW``)."""
    frame, rows = _build(tables, as_of, half_life_days)
    return frame.collect(engine=engine_for(rows))


def engine_for(rows: int) -> str:
    """The Polars engine for a feature query of at most ``rows`` rows (``IN_MEMORY_BELOW``)."""
    return "in-memory" if rows < IN_MEMORY_BELOW else "streaming"


def build_features(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], *, half_life_days: float = 180.0
) -> pl.LazyFrame:
    """One row per enterprise established before each as_of date, with every feature of ``FEATURES``.

    ``tables`` are lazy frames with the contract schema (``riskengine.lake.layout.load_tables``); missing
    or empty tables are fine. Every feature uses only records visible before its as_of
    (``features.asof``). The tables are read (and their enterprise ids encoded) when this is called;
    the features are a lazy query over them, sorted by as_of and then the enterprises table's order:
    collect it once.
    """
    return _build(tables, as_of, half_life_days)[0]


def _build(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], half_life_days: float
) -> tuple[pl.LazyFrame, int]:
    """The lazy feature frame, and at most how many rows it has (enterprises x as_of dates)."""
    frame, rows = assemble(tables, as_of, half_life_days=half_life_days)
    return finish(frame), rows


def assemble(
    tables: Mapping[str, pl.LazyFrame],
    as_of: Sequence[date],
    *,
    half_life_days: float = 180.0,
    strictness: pl.LazyFrame | None = None,
    rates: pl.LazyFrame | None = None,
) -> tuple[pl.LazyFrame, int]:
    """Every feature but the associations, with ``legal_rep_id`` beside them (``finish`` adds those).

    Two features look across enterprises: inspector strictness (an inspector's record over every
    enterprise) and the associations (a legal representative's other enterprises). A part of the
    enterprises (``riskengine.workflows.cluster``) passes ``strictness`` computed from every
    inspection (``inspections.strictness_table``) and finishes with the representatives' totals over
    every part (``associations.totals``); the whole city needs neither. The same for the population's
    per-inspection rates the enterprises' rates shrink towards (``rates``: ``inspections.population_rates``).

    Records voided by an upheld objection drop out from the as_of dates that see the void
    (``asof.void_segments``): the dates are assembled in runs that see the same voids (one run when
    there are none), each on the tables without the records void for it.
    Returns the lazy frame and at most how many rows it has (enterprises x as_of dates).
    """
    asof.as_of_frame(as_of)  # validates
    severity.check_half_life(half_life_days, sorted(set(as_of)))
    voids = tables.get("record_voids")
    void_frame = (voids.collect() if voids is not None
                  else pl.DataFrame(schema=TABLES["record_voids"].schema))
    runs = asof.void_segments(void_frame, as_of)
    built = [_assemble_run(_without(tables, void), dates, half_life_days, strictness, rates)
             for dates, void in runs]
    if len(built) == 1:
        return built[0]
    return pl.concat([frame for frame, _ in built]), sum(rows for _, rows in built)


def whole_city_tables(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date]
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(strictness, rates): the two tables that look across enterprises, for ``assemble`` on a part of
    the enterprises. ``tables`` must hold every enterprise's inspections and every record void.

    They are computed as the whole city's ``assemble`` computes them: run by run of as_of dates that
    see the same voids (``asof.void_segments``), each run without the records void for it, so a
    voided inspection leaves its inspector's strictness and the population's rates from the day the
    void is visible, in every part.
    """
    asof.as_of_frame(as_of)  # validates
    voids = tables.get("record_voids")
    void_frame = (voids.collect() if voids is not None
                  else pl.DataFrame(schema=TABLES["record_voids"].schema))
    strict: list[pl.LazyFrame] = []
    rates: list[pl.LazyFrame] = []
    for dates, void in asof.void_segments(void_frame, as_of):
        insp = _without({"inspections": tables["inspections"]}, void)["inspections"]
        strict.append(inspections.strictness_table(insp, dates))
        rates.append(inspections.population_rates(insp, dates))
    return pl.concat(strict), pl.concat(rates)


def _without(tables: Mapping[str, pl.LazyFrame], void: pl.DataFrame) -> Mapping[str, pl.LazyFrame]:
    """``tables`` without the records named in ``void`` (record_table, record_id)."""
    if void.height == 0:
        return tables
    out = dict(tables)
    for name, ids in void.group_by("record_table").agg("record_id").iter_rows():
        if name in out:
            out[name] = out[name].filter(~pl.col(TABLES[name].key).is_in(ids))
    return out


def _assemble_run(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], half_life_days: float,
    strictness: pl.LazyFrame | None, rates: pl.LazyFrame | None = None,
) -> tuple[pl.LazyFrame, int]:
    """``assemble`` for as_of dates that all see the same records."""
    dates = asof.as_of_frame(as_of)
    dates_list = sorted(set(as_of))
    t = _encode(_conform(tables))
    ids = [KEY, AS_OF]
    population = asof.population(t["enterprises"].select(KEY, _ID, *_PROFILE), dates)
    keys = population.select(ids)

    # Each family is aligned with the population on its own and the results are put side by side:
    # every alignment keeps the population's order, so none copies the columns gathered before it.
    slots = keys.select(_join_key()).set_sorted(_JK)
    inputs = Inputs(t, keys, dates_list, half_life_days, strictness, rates)
    parts = [_align(slots, family.build(inputs)) for family in FAMILIES]
    family_cols = [n for n, s in FEATURES.items() if s.family not in ("associations", "profile")]
    family_cols.remove("severity__adverse_365d")
    frame = (
        pl.concat([profile.build(population), *parts], how="horizontal")
        .with_columns([_finish(FEATURES[n]) for n in family_cols])
        .with_columns(pl.sum_horizontal(severity.ADVERSE_365D).cast(pl.Int64).alias("severity__adverse_365d"))
        .with_columns(pl.col(_ID).alias(KEY))
    )
    n_enterprises = t["enterprises"].select(pl.len()).collect().item()
    return frame, n_enterprises * len(dates_list)


def finish(frame: pl.LazyFrame, rep_totals: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """``assemble``'s frame with the association features, in the catalog's column order.

    Without ``rep_totals`` the representatives' totals come from ``frame`` itself (the whole city).
    """
    if rep_totals is None:
        frame = frame.with_columns(associations.columns())
    else:
        frame = frame.join(rep_totals, on=[associations.REP, AS_OF], how="left",
                           maintain_order="left").with_columns(associations.from_totals())
    # Ordered by (as_of, enterprise row) from the population; the enterprise ids came along with it.
    return frame.select(KEY, AS_OF, *[_finish(s) for s in FEATURES.values()])


def severity_parts(
    tables: Mapping[str, pl.LazyFrame], as_of: Sequence[date], *, half_life_days: float = 180.0
) -> pl.DataFrame:
    """The severity index split by table per (enterprise_id, as_of) (``severity.components``): what
    explanations use to word the index by the records behind it. Rows only where a record is visible."""
    dates_list = sorted(set(as_of))
    asof.as_of_frame(dates_list)  # validates
    t = _conform(tables)
    ent = t["enterprises"].select(KEY)
    parts = severity.components(t, dates_list, half_life_days)
    return parts.join(ent.collect(), on=KEY, how="semi")
