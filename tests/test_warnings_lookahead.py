"""The look-ahead property for early warnings: records dated or recorded on or after as_of (and
status changes taking effect then) change no warning, as for the features (tests/test_features_oracle).

The feature histories are thickened near as_of (active enterprises, complaints, licences expiring,
serious penalties and ordered recalls within the rules' windows, some entered late), so that most
examples raise warnings and the property is not passed vacuously."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, seed
from hypothesis import strategies as st

from riskengine.supervision.policy import load_policy
from riskengine.workflows.warnings import evaluate_warnings
from tests.feature_histories import AS_OF, histories, to_lazy
from tests.test_features_oracle import EXAMPLES, future_of

RULES = load_policy(None).warnings


def raised(tables: dict, d: date) -> list[tuple]:
    frame = evaluate_warnings(to_lazy(tables), d, RULES)
    return sorted(frame.select("enterprise_id", "rule", "subject", "text_en").iter_rows())


def near(data: st.DataObject, d: date, low: int, high: int) -> date:
    return d + timedelta(days=data.draw(st.integers(low, high)))


def late(data: st.DataObject, day: date, d: date) -> date | None:
    return data.draw(st.sampled_from([None, None, day, d - timedelta(days=1), d, d + timedelta(days=3)]))


def thicken(tables: dict, d: date, data: st.DataObject) -> dict:
    """Active enterprises and a handful of events inside the rules' windows around D."""
    ids = [e["enterprise_id"] for e in tables["enterprises"]]
    for e in tables["enterprises"]:
        e["status"], e["established_on"] = "active", date(2018, 1, 1)
    pick = st.sampled_from(ids)
    for i in range(data.draw(st.integers(0, 8))):
        day = near(data, d, -185, 3)
        tables["complaints"].append(
            {
                "complaint_id": f"N{i}",
                "enterprise_id": data.draw(pick),
                "received_on": day,
                "recorded_on": late(data, day, d),
            }
        )
    for i in range(data.draw(st.integers(0, 2))):
        issued = near(data, d, -400, 2)
        tables["licenses"].append(
            {
                "license_id": f"NL{i}",
                "enterprise_id": data.draw(pick),
                "kind": data.draw(st.sampled_from(["production_license", "ccc"])),
                "issued_on": issued,
                "recorded_on": late(data, issued, d),
                "expires_on": near(data, d, -3, 35),
                "status": data.draw(st.sampled_from(["valid", "valid", "suspended"])),
                "status_changed_on": near(data, d, -5, 5),
            }
        )
    for i in range(data.draw(st.integers(0, 2))):
        day = near(data, d, -40, 2)
        tables["penalties"].append(
            {
                "case_id": f"NP{i}",
                "enterprise_id": data.draw(pick),
                "decided_on": day,
                "recorded_on": late(data, day, d),
                "severity": "serious",
                "dishonest_list": False,
            }
        )
        tables["recalls"].append(
            {
                "recall_id": f"NQ{i}",
                "enterprise_id": data.draw(pick),
                "announced_on": day,
                "recorded_on": late(data, day, d),
                "mode": "ordered",
                "hazard": "high",
            }
        )
    return tables


@EXAMPLES
@given(histories(), st.sampled_from(AS_OF), st.data())
def test_records_not_yet_visible_raise_or_change_no_warning(tables, d, data):
    tables = thicken(tables, d, data)
    past, changed = future_of(tables, d, data)
    base = raised(tables, d)
    assert raised(past, d) == base
    assert raised(changed, d) == base


def test_the_thickened_histories_do_raise_warnings():
    seen: set[str] = set()

    @seed(14)
    @EXAMPLES
    @given(histories(), st.sampled_from(AS_OF), st.data())
    def collect(tables, d, data):
        seen.update(rule for _, rule, _, _ in raised(thicken(tables, d, data), d))

    collect()
    assert {"complaint_surge", "licence_expiring", "serious_penalty_or_recall"} <= seen
