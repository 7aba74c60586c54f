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


# --- every rule of the file, each refusal in its own words (mutation testing, issue 19) -----------


@pytest.mark.parametrize(("entry", "message"), [
    ("{ ratio = 1 }", None),  # the upper edge is allowed
    ("{ ratio = 1.0000001 }", "ratio must be > 0 and ≤ 1; got 1.0000001"),
    ("{ ratio = -0.1 }", "ratio must be > 0 and ≤ 1; got -0.1"),
    ("{ ratio = true }", "ratio must be > 0 and ≤ 1; got True"),
    ("{ ratio = '0.1' }", "ratio must be > 0 and ≤ 1; got '0.1'"),
    ("{ ratio = 0.1, min_per_year = 12 }", None),
    ("{ ratio = 0.1, min_per_year = 12.0 }", None),
    ("{ ratio = 0.1, min_per_year = 13 }", "min_per_year must be an integer from 0 to 12; got 13"),
    ("{ ratio = 0.1, min_per_year = -1 }", "min_per_year must be an integer from 0 to 12; got -1"),
    ("{ ratio = 0.1, min_per_year = true }", "min_per_year must be an integer from 0 to 12; got True"),
    ("{ ratio = 0.1, min_per_year = '2' }", "min_per_year must be an integer from 0 to 12; got '2'"),
    ("{ ratio = 0.1, weight = 2 }", "weight is not a known entry"),
    ("0.1", "must be a table, e.g. { ratio = 0.1, min_per_year = 0 }; got 0.1"),
])
def test_each_stratum_entry_rule(entry: str, message: str | None) -> None:
    text = DEFAULT_SECTION.replace("B = { ratio = 0.02, min_per_year = 0 }", f"B = {entry}")
    if message is None:
        policy = parse_policy(text)
        assert policy.frequency("retail", "B")[1] in (0, 12)
        assert isinstance(policy.frequency("retail", "B")[1], int)
    else:
        where = "default.B " if message.startswith("must") else "default.B."  # the entry, or a key in it
        assert _error(text) == f"policy.toml: {where}{message}"


def test_a_minimum_of_twelve_a_year_is_kept_as_the_integer_twelve() -> None:
    text = DEFAULT_SECTION.replace("D = { ratio = 0.30, min_per_year = 0 }",
                                   "D = { ratio = 1, min_per_year = 12.0 }")
    assert parse_policy(text).frequency("retail", "D") == (1.0, 12)


@pytest.mark.parametrize("sector", ["Toys", "default", "9toys", "toys-2"])
def test_a_sector_key_must_be_lower_snake_and_not_default(sector: str) -> None:
    text = DEFAULT_SECTION + f'[sectors."{sector}"]\nD = {{ ratio = 0.6 }}\n'
    assert _error(text) == (f"policy.toml: sectors.{sector} is not a sector key (lower_snake, not 'default')")


def test_every_problem_of_a_file_is_reported_on_its_own_line() -> None:
    text = (DEFAULT_SECTION + '[sectors."Bad"]\nD = { ratio = 0.6 }\n'
            + "[sectors.wire_cable]\nD = { ratio = 0.6 }\n")
    assert _error(text).splitlines() == [
        "policy.toml: sectors.Bad is not a sector key (lower_snake, not 'default')",
        "policy.toml: sectors.wire_cable.D.min_per_year must be ≥ 1 in a pilot sector (every D enterprise "
        "inspected at least once a year); got 0",
    ]


def test_a_pilot_sector_inherits_the_yearly_d_inspection_from_default_when_it_lists_no_d() -> None:
    yearly = DEFAULT_SECTION.replace("D = { ratio = 0.30, min_per_year = 0 }",
                                     "D = { ratio = 0.30, min_per_year = 1 }")
    inherited = parse_policy(yearly + "[sectors.wire_cable]\nC = { ratio = 0.2 }\n")
    assert inherited.frequency("wire_cable", "D") == (0.3, 1)
    assert "sectors.wire_cable.D.min_per_year must be ≥ 1" in _error(
        DEFAULT_SECTION + "[sectors.wire_cable]\nC = { ratio = 0.2 }\n")


GRADE_SHARES = "[grades]\nshares = {{ A = {A}, B = {B}, C = {C}, D = {D} }}\n"


def test_grade_shares_are_read_when_they_add_up_and_favour_a_and_b() -> None:
    text = GRADE_SHARES.format(A=0.5, B=0.3, C=0.15, D=0.05) + DEFAULT_SECTION
    assert parse_policy(text).grade_shares == {"A": 0.5, "B": 0.3, "C": 0.15, "D": 0.05}
    assert parse_policy(DEFAULT_SECTION).grade_shares is None
    edges = GRADE_SHARES.format(A=0.6, B=0.2, C=0.18, D=0.02) + DEFAULT_SECTION  # both ends of a share
    assert parse_policy(edges).grade_shares == {"A": 0.6, "B": 0.2, "C": 0.18, "D": 0.02}


@pytest.mark.parametrize(("shares", "message"), [
    ({"A": 0.61, "B": 0.2, "C": 0.17, "D": 0.02},
     "grades.shares.A must be a share from 0.02 to 0.6; got 0.61"),
    ({"A": 0.5, "B": 0.3, "C": 0.19, "D": 0.01},
     "grades.shares.D must be a share from 0.02 to 0.6; got 0.01"),
    ({"A": 0.5, "B": 0.3, "C": 0.1, "D": 0.05}, "grades.shares must add up to 1; they add up to 0.95"),
    ({"A": 0.25, "B": 0.25, "C": 0.3, "D": 0.2},
     "grades.shares must put most enterprises in A and B (SAMR: most are low or general risk)"),
])
def test_grade_shares_out_of_range_off_the_sum_or_top_heavy_are_refused(shares: dict, message: str) -> None:
    assert _error(GRADE_SHARES.format(**shares) + DEFAULT_SECTION).startswith(f"policy.toml: {message}")


def test_an_even_split_between_ab_and_cd_is_top_heavy() -> None:
    shares = {"A": 0.3, "B": 0.2, "C": 0.3, "D": 0.2}
    assert "must put most enterprises in A and B" in _error(GRADE_SHARES.format(**shares) + DEFAULT_SECTION)


@pytest.mark.parametrize(("section", "message"), [
    ("[monitor]\npsi_watch = 0.3\npsi_act = 0.2\n", "monitor.psi_act must be ≥ monitor.psi_watch; got 0.2"),
    ("[monitor]\nalpha = 0\n", "monitor.alpha must be a number > 0; got 0"),
    ("[monitor]\ncalibration_tolerance = true\n",
     "monitor.calibration_tolerance must be a number > 0; got True"),
    ("[warnings]\nack_limit_days = 0\n", "warnings.ack_limit_days must be a whole number of days ≥ 1; got 0"),
    ("[warnings]\nack_limit_days = 2.5\n",
     "warnings.ack_limit_days must be a whole number of days ≥ 1; got 2.5"),
    ("[warnings.rules.grade_jump]\nthreshold = 0\ntext_zh = 'x'\ntext_en = 'x'\n",
     "warnings.rules.grade_jump.threshold must be a number > 0; got 0"),
    ("[warnings.rules.grade_jump]\nthreshold = 1\nlookback_days = -1\ntext_zh = 'x'\ntext_en = 'x'\n",
     "warnings.rules.grade_jump.lookback_days must be an integer ≥ 0; got -1"),
    ("[warnings.rules.grade_jump]\nthreshold = 1\nmin_count = true\ntext_zh = 'x'\ntext_en = 'x'\n",
     "warnings.rules.grade_jump.min_count must be an integer ≥ 0; got True"),
    ('version = ""\n', "version must be a non-empty string; got ''"),
    ("version = 3\n", "version must be a non-empty string; got 3"),
])
def test_monitor_warning_and_version_entries_are_checked(section: str, message: str) -> None:
    assert _error(section + DEFAULT_SECTION) == f"policy.toml: {message}"


def test_equal_psi_thresholds_and_zero_counts_are_allowed() -> None:
    text = DEFAULT_SECTION + ("[monitor]\npsi_watch = 0.2\npsi_act = 0.2\n[warnings]\nack_limit_days = 1\n"
                              "[warnings.rules.grade_jump]\nthreshold = 1\nlookback_days = 0\nmin_count = 0\n"
                              "text_zh = '{old}→{new}'\ntext_en = '{old} to {new} on {as_of}'\n")
    policy = parse_policy(text)
    assert (policy.monitor.psi_watch, policy.monitor.psi_act, policy.warnings.ack_limit_days) == (0.2, 0.2, 1)
    assert set(policy.warnings.rules) == {"grade_jump"}  # a file's own rules replace the built-in ones


def test_a_template_with_a_positional_or_bad_field_is_named() -> None:
    text = DEFAULT_SECTION + ("[warnings.rules.grade_jump]\nthreshold = 2\ntext_zh = '{0}'\n"
                              "text_en = '{old'\n")
    lines = _error(text).splitlines()
    assert lines[0].startswith("policy.toml: warnings.rules.grade_jump.text_zh uses ")
    assert lines[1].startswith("policy.toml: warnings.rules.grade_jump.text_en uses ")
    assert lines[0].endswith("which is not one of {old}, {new}, {as_of}")


def test_a_policy_file_keeps_its_own_sections_and_the_built_in_fills_the_rest() -> None:
    text = DEFAULT_SECTION + "[monitor]\npsi_watch = 0.05\npsi_act = 0.5\n"
    policy = parse_policy(text, "mine.toml")
    assert (policy.monitor.psi_watch, policy.monitor.psi_act) == (0.05, 0.5)
    assert policy.warnings.rules["licence_expiring"].threshold == 30  # built-in
    assert policy.source == "mine.toml" and policy.digest.startswith("sha256:")
    assert policy.version == policy.digest[:19]
    assert len(policy.digest) == len("sha256:") + 64


def test_frequency_of_an_unknown_grade_and_a_frame_with_one_are_refused() -> None:
    import polars as pl

    from riskengine.core.errors import UsageError

    policy = parse_policy(DEFAULT_SECTION + "[sectors.toys]\nD = { ratio = 0.6, min_per_year = 2 }\n")
    with pytest.raises(UsageError, match=r"unknown grade 'E'; expected one of A, B, C, D"):
        policy.frequency("retail", "E")
    frame = pl.DataFrame({"sector": ["toys", "retail", "toys"], "grade": ["D", "D", "A"]})
    assigned = policy.assign(frame)
    assert assigned.columns == ["sector", "grade", "ratio", "min_per_year"]
    assert assigned.select("ratio", "min_per_year").rows() == [(0.6, 2), (0.3, 0), (0.01, 0)]
    with pytest.raises(UsageError, match=r"unknown grade\(s\) \['E'\]; expected one of A, B, C, D"):
        policy.assign(pl.DataFrame({"sector": ["retail"], "grade": ["E"]}))


def test_the_frequency_table_lists_default_then_each_sector_by_grade() -> None:
    policy = parse_policy(DEFAULT_SECTION + "[sectors.toys]\nD = { ratio = 0.6, min_per_year = 2 }\n"
                          "[sectors.bikes]\nA = { ratio = 0.05 }\n")
    assert policy.sectors == ["bikes", "toys"]
    table = policy.frequency_table()
    assert table.select("sector", "grade").rows()[:5] == [
        ("default", "A"), ("default", "B"), ("default", "C"), ("default", "D"), ("bikes", "A")]
    assert table.row(4) == ("bikes", "A", 0.05, 0) and table.row(11) == ("toys", "D", 0.6, 2)


def test_a_policy_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"none\.toml: cannot read the policy file: No such file"):
        load_policy(tmp_path / "none.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'version = "\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin\.toml: the policy file is not UTF-8 text$"):
        load_policy(latin)


def test_the_built_in_policy_names_itself_and_a_file_its_path(tmp_path: Path) -> None:
    assert load_policy(None).source == "built-in"
    path = tmp_path / "mine.toml"
    path.write_text(DEFAULT_SECTION, encoding="utf-8")
    assert load_policy(path).source == str(path)


def test_an_unknown_warning_rule_lists_the_known_ones() -> None:
    text = DEFAULT_SECTION + "[warnings.rules.moon_phase]\nthreshold = 1\ntext_zh = 'x'\ntext_en = 'x'\n"
    assert _error(text) == (
        "policy.toml: warnings.rules.moon_phase is not a known rule (known: licence_expiring, "
        "complaint_surge, serious_penalty_or_recall, grade_jump, abnormal_listing_3y, "
        "commitment_due_or_breached)")


def test_a_section_that_must_be_a_table_of_tables_is_named() -> None:
    assert _error("sectors = 5\n" + DEFAULT_SECTION) == (
        "policy.toml: sectors must be a table, e.g. { ratio = 0.1, min_per_year = 0 }; got 5")


def test_sector_and_warning_problems_are_reported_together() -> None:
    text = DEFAULT_SECTION + ('[sectors."Bad"]\nD = { ratio = 0.6 }\n'
                              "[warnings.rules.moon_phase]\nthreshold = 1\ntext_zh = 'x'\ntext_en = 'x'\n")
    lines = _error(text).splitlines()
    assert len(lines) == 2 and "sectors.Bad" in lines[0] and "moon_phase" in lines[1]


def test_errors_name_policy_toml_when_no_file_name_is_given() -> None:
    with pytest.raises(ConfigError, match=r"^policy\.toml: default\.A is missing"):
        parse_policy(DEFAULT_SECTION.replace("A = { ratio = 0.01, min_per_year = 0 }", ""))


def test_publication_months_by_severity() -> None:
    text = DEFAULT_SECTION + "[publication]\nminor_months = 1\nmoderate_months = 6\n"
    rules = parse_policy(text).publication
    assert [rules.months(s) for s in ("minor", "moderate", "serious")] == [1, 6, 36]


def test_a_files_sharing_and_case_sections_are_carried_into_the_policy() -> None:
    text = DEFAULT_SECTION + "[sharing]\ngrades_to_platform = true\n[cases]\nobjection_accept_days = 3\n"
    policy = parse_policy(text)
    assert (policy.sharing.grades_to_platform, policy.sharing.grade_to_finance) == (True, False)
    assert (policy.cases.objection_accept_days, policy.cases.objection_decide_days) == (3, 10)
