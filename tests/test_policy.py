"""The supervision policy file: defaults, validation with errors naming the entry, versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskengine.core.contract import GRADES, PILOT_SECTORS
from riskengine.core.errors import ConfigError
from riskengine.supervision.policy import default_policy_text, load_policy, parse_policy

DEFAULT_SECTION = """
[default]
A = { ratio = 0.01, min_per_year = 0 }
B = { ratio = 0.02, min_per_year = 0 }
C = { ratio = 0.10, min_per_year = 0 }
D = { ratio = 0.30, min_per_year = 0 }
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "policy.toml")
    return str(caught.value)


def test_default_policy_has_the_published_ordinary_ratios():
    policy = load_policy(None)
    assert [policy.frequency("retail", g)[0] for g in GRADES] == [0.01, 0.02, 0.10, 0.30]


def test_pilot_sectors_are_stricter_and_inspect_every_d_once_a_year():
    policy = load_policy(None)
    for sector in PILOT_SECTORS:
        for grade in GRADES:
            assert policy.frequency(sector, grade)[0] >= policy.frequency("retail", grade)[0]
        assert policy.frequency(sector, "D")[1] >= 1


def test_no_stratum_of_the_default_policy_has_ratio_zero():
    table = load_policy(None).frequency_table()
    assert table.height == 4 * (1 + len(PILOT_SECTORS))
    assert table["ratio"].min() > 0


def test_sector_section_inherits_the_grades_it_does_not_list():
    policy = parse_policy(DEFAULT_SECTION + "[sectors.toys]\nD = { ratio = 0.6, min_per_year = 2 }\n")
    assert policy.frequency("toys", "D") == (0.6, 2)
    assert policy.frequency("toys", "C") == (0.10, 0)


def test_ratio_zero_is_rejected_naming_the_entry():
    text = DEFAULT_SECTION + "[sectors.wire_cable]\nD = { ratio = 0, min_per_year = 1 }\n"
    assert _error(text) == "policy.toml: sectors.wire_cable.D.ratio must be > 0 and ≤ 1; got 0"


def test_ratio_above_one_is_rejected():
    assert "default.B.ratio must be > 0 and ≤ 1; got 1.5" in _error(DEFAULT_SECTION.replace("0.02", "1.5"))


def test_fractional_minimum_is_rejected():
    text = DEFAULT_SECTION.replace("C = { ratio = 0.10, min_per_year = 0 }",
                                   "C = { ratio = 0.10, min_per_year = 0.5 }")
    assert "default.C.min_per_year must be an integer from 0 to 12; got 0.5" in _error(text)


def test_unknown_grade_is_named():
    text = DEFAULT_SECTION + "[sectors.toys]\nE = { ratio = 0.5 }\n"
    assert "sectors.toys.E is not a known entry" in _error(text)


def test_missing_grade_is_named():
    text = DEFAULT_SECTION.replace("D = { ratio = 0.30, min_per_year = 0 }", "")
    assert "default.D is missing" in _error(text)


def test_pilot_sector_without_yearly_d_inspection_is_rejected():
    text = DEFAULT_SECTION + "[sectors.fire_products]\nD = { ratio = 0.5, min_per_year = 0 }\n"
    assert "sectors.fire_products.D.min_per_year must be ≥ 1 in a pilot sector" in _error(text)


def test_invalid_toml_is_reported_with_the_file_name():
    assert _error("[default\nA = 1").startswith("policy.toml: not valid TOML")


def test_explicit_version_is_used():
    assert parse_policy('version = "2026-pilot"\n' + DEFAULT_SECTION).version == "2026-pilot"


def test_version_without_explicit_string_is_a_content_hash():
    first = parse_policy(DEFAULT_SECTION)
    second = parse_policy(DEFAULT_SECTION.replace("0.30", "0.35"))
    assert first.version.startswith("sha256:")
    assert first.version != second.version
    assert parse_policy(DEFAULT_SECTION).version == first.version


def test_load_policy_reads_a_file_and_names_it_in_errors(tmp_path: Path):
    good = tmp_path / "mine.toml"
    good.write_text(DEFAULT_SECTION.replace("0.30", "0.4"), encoding="utf-8")
    assert load_policy(good).frequency("retail", "D")[0] == 0.4
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_SECTION.replace("0.01", "0"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^bad.toml: default.A.ratio must be > 0"):
        load_policy(bad)


def test_settings_policy_path_overrides_the_built_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from riskengine.core.config import get_settings

    path = tmp_path / "env.toml"
    path.write_text('version = "from-settings"\n' + DEFAULT_SECTION, encoding="utf-8")
    monkeypatch.setenv("RISKENGINE_POLICY_PATH", str(path))
    get_settings.cache_clear()
    try:
        assert load_policy().version == "from-settings"
    finally:
        get_settings.cache_clear()


def test_built_in_policy_text_validates():
    assert parse_policy(default_policy_text()).version == "2025.1-default"


def test_default_policy_caps_what_the_baseline_alone_may_do_at_c():
    assert load_policy().baseline_cap == "C"
    assert parse_policy(DEFAULT_SECTION).baseline_cap is None  # no section: no cap


def test_baseline_cap_must_name_a_grade():
    assert "baseline_cap.max_grade" in _error(DEFAULT_SECTION + '\n[baseline_cap]\nmax_grade = "E"\n')


def test_default_policy_defines_every_warning_rule_and_the_monitor_thresholds():
    policy = load_policy(None)
    assert set(policy.warnings.rules) == {"licence_expiring", "complaint_surge", "serious_penalty_or_recall",
                                          "grade_jump", "abnormal_listing_3y", "commitment_due_or_breached"}
    assert policy.warnings.rules["licence_expiring"].threshold == 30
    assert (policy.monitor.psi_watch, policy.monitor.psi_act) == (0.1, 0.25)


def test_unknown_warning_rule_and_bad_template_field_are_named():
    text = DEFAULT_SECTION + (
        "[warnings.rules.moon_phase]\nthreshold = 1\ntext_zh = 'x'\ntext_en = 'x'\n"
        "[warnings.rules.grade_jump]\nthreshold = 2\ntext_zh = '{old}→{nope}'\ntext_en = '{old}'\n")
    message = _error(text)
    assert "warnings.rules.moon_phase is not a known rule" in message
    assert "warnings.rules.grade_jump.text_zh uses 'nope'" in message


def test_a_policy_without_warning_rules_keeps_the_built_in_ones():
    assert "grade_jump" in parse_policy(DEFAULT_SECTION).warnings.rules
