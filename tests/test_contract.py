"""The USCC check (GB 32100-2015) and the contract tables."""

import pytest

from riskengine.core.contract import TABLES
from riskengine.core.ids import is_valid_uscc, uscc_check_char, uscc_problem


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L"])
def test_known_valid_codes_pass(code: str) -> None:
    assert uscc_problem(code) is None


def test_wrong_check_character_is_named() -> None:
    problem = uscc_problem("91350100M000100Y44")
    assert problem is not None and "check character" in problem and "'3'" in problem


def test_wrong_length_is_named() -> None:
    assert "18 characters" in (uscc_problem("91350100M000100Y4") or "")


@pytest.mark.parametrize("bad", ["I", "O", "S", "V", "Z", "a"])
def test_letters_outside_the_alphabet_are_rejected(bad: str) -> None:
    code = "91350100M000100Y4" + bad
    assert not is_valid_uscc(code)
    assert "alphabet" in (uscc_problem(code) or "")


def test_check_character_31_maps_to_zero() -> None:
    # Search for a 17-character prefix whose weighted sum is 0 mod 31: its check value 31 maps to '0'.
    prefix = "9111000060003734"
    for ch in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        code17 = prefix + ch
        if uscc_check_char(code17) == "0":
            assert is_valid_uscc(code17 + "0")
            break
    else:  # pragma: no cover - the alphabet always contains such a character
        pytest.fail("no prefix with check 0 found")


def test_every_event_table_references_enterprises_or_penalties() -> None:
    for name, table in TABLES.items():
        if name == "enterprises":
            continue
        refs = {c.references for c in table.columns if c.references}
        assert refs & {("enterprises", "enterprise_id"), ("penalties", "case_id")}
