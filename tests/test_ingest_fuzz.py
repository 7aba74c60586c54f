"""Fuzzing CSV ingest: any bytes in a table file either ingest with every row accounted for, or stop
with one clear FatalInputError line (a file that is not UTF-8) — never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine.core.errors import FatalInputError
from riskengine.lake.layout import scan_table
from tests.ingest_helpers import enterprise, inspection, run, source, uscc

HEADER = list(inspection())
GOOD_FIELDS = list(inspection("I0").values())

# Cells: good values, and the characters that break CSVs: quotes, commas, line ends, NULs, BOMs.
cell = st.one_of(
    st.sampled_from([*GOOD_FIELDS, uscc(1), uscc(2), "", "2021-13-40", "-1", "是"]),
    st.text(alphabet=st.sampled_from(list('ab,"\n\r\t\x00\ufeff 长=+-@')), max_size=8),
)
row = st.lists(cell, min_size=0, max_size=len(HEADER) + 3)
joiner = st.sampled_from([",", '","'])
encoding = st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "gbk", "latin-1"])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(row, joiner), max_size=12), enc=encoding,
       ending=st.sampled_from(["\n", "\r\n"]))
def test_any_csv_is_conserved_or_refused_in_one_line(
    tmp_path: Path, rows: list[tuple[list[str], str]], enc: str, ending: str
) -> None:
    folder = tmp_path / "fuzz"
    shutil.rmtree(folder, ignore_errors=True)
    src = source(folder, enterprises=[enterprise(uscc(1)), enterprise(uscc(2))])
    lines = [",".join(HEADER)] + [j.join(cells) for cells, j in rows]
    try:
        data = ending.join(lines).encode(enc)
    except UnicodeEncodeError:
        data = ending.join(lines).encode("utf-8")
    (src / "inspections.csv").write_bytes(data + ending.encode())
    lake = folder / "lake"
    try:
        report = run(src, lake)
    except FatalInputError as exc:
        assert not _is_utf8(data), exc  # only a file that is not UTF-8 may stop the ingest
        assert "\n" not in str(exc).strip() and "inspections.csv" in str(exc)
        assert not lake.exists()
        return
    for table, counts in report.tables.items():
        assert counts["read"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"], table
        assert scan_table(lake, table).collect().height == counts["accepted"], table


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
