"""What a bureau may publish on its website as of D (`riskengine publish`, CONTRACT §9).

事后: 违法行为记录及发布. Administrative penalties in their publication period (months per severity in
the policy file; minor penalties decided by the simple procedure are not published; a repaired
penalty is withdrawn) and list entries while listed, as three files in one folder:

* ``index.html`` — one self-contained page (inline style and script, no external asset) whose search
  box filters the table offline. Every value is escaped by Jinja2's autoescape, and a Content
  Security Policy allows only the page's own script (by hash), so a hostile name stays text.
* ``records.csv`` — UTF-8 with BOM (Excel opens Chinese correctly), every cell quoted, and a cell
  starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return prefixed with ``'`` (OWASP CSV
  injection), so a spreadsheet never evaluates it as a formula.
* ``records.json`` — the same rows.

Never a grade, score or a grade's reasons: the rows come from ``published_records``, which reads
only the lake's public facts.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment

from riskengine.core import exports
from riskengine.core.files import atomic_write, atomic_write_text
from riskengine.lake.layout import load_tables
from riskengine.supervision.policy import Policy
from riskengine.workflows.credit_record import PUBLISHED_COLUMNS, published_records

COLUMNS = PUBLISHED_COLUMNS
TYPE_LABELS = {"penalty": "行政处罚 penalty", "list_entry": "名录 list entry"}

# Filters the table rows by their text; reads textContent and sets `hidden` only (no HTML is built).
SEARCH_SCRIPT = """
(function () {
  var box = document.getElementById("q");
  var count = document.getElementById("count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#records tbody tr"));
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  function filter() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (r, i) {
      var hit = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
      r.hidden = !hit;
      if (hit) { shown += 1; }
    });
    count.textContent = String(shown);
  }
  box.addEventListener("input", filter);
  filter();
})();
"""


def formula_safe(value: Any) -> str:
    """A CSV cell that no spreadsheet evaluates (OWASP: prefix formula starters with a quote)."""
    return exports.escape_cell("" if value is None else str(value))


def render_html(records: list[dict[str, Any]], as_of: date, policy_version: str) -> str:
    """The page: records escaped by autoescape, the search script allowed by its CSP hash."""
    template = resources.files("riskengine").joinpath("data/published.html.j2").read_text(encoding="utf-8")
    env = Environment(autoescape=True, keep_trailing_newline=True)
    digest = base64.b64encode(hashlib.sha256(SEARCH_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return env.from_string(template).render(
        records=records,
        as_of=as_of,
        policy_version=policy_version,
        type_labels=TYPE_LABELS,
        script=SEARCH_SCRIPT,
        script_hash=f"sha256-{digest}",
    )


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([formula_safe(row[c]) for c in COLUMNS])


def publication(lake: Path, as_of: date, policy: Policy) -> pl.DataFrame:
    """The published rows as of D (``COLUMNS``)."""
    return published_records(load_tables(lake), policy.publication, as_of).select(COLUMNS)


def publish(lake: Path, as_of: date, out: Path, policy: Policy) -> int:
    """Write index.html, records.csv and records.json to ``out`` (each atomically); returns the count."""
    frame = publication(lake, as_of, policy)
    rows = frame.to_dicts()
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "as_of": as_of.isoformat(),
        "policy_version": policy.version,
        "count": len(rows),
        "records": rows,
    }
    atomic_write_text(
        out / "records.json", json.dumps(payload, ensure_ascii=False, indent=1, default=str) + "\n"
    )
    atomic_write(out / "records.csv", lambda tmp: _write_csv(rows, tmp))
    atomic_write_text(out / "index.html", render_html(rows, as_of, policy.version))
    return len(rows)
