"""USCC test vectors that do not come from the code under test.

Published codes of real enterprises, and codes whose check character was worked out by a separate
implementation of GB 32100-2015 written here (weights 3^i mod 31, listed literally too). Between them
every one of the 17 positions holds a non-zero character in some valid code, so any single weight off
by one changes some expected check character."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from riskengine.core.ids import (
    is_valid_uscc,
    make_usccs,
    uscc_check_char,
    uscc_problem,
    uscc_reason,
    uscc_valid,
)

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

# Published codes of real enterprises (varied characters, letters in the body and as check).
PUBLISHED = [
    "91350100M000100Y43",
    "91110000600037341L",
    "91440300708461136T",
    "91330100716105852F",
    "91110000802100433B",
    "914403001922038216",
    "91520000214434146R",
    "91110000100017643K",
]
# Worked out by hand (with ``reference_check`` below): letters either side of the skipped I, O, S, V.
HAND_MADE = [
    "92420106MA4KXY7UPG",
    "93440305MA5FJ8TR0U",
    "12420111AB0CDE9HG6",
    "51110108YXWUTRQPN1",
    "Y1A2B3C4D5E6F7G8H7",
    "91420106MA4KQ012A0",  # remainder 31: check written as 0
    "91420106MA4KQ012LY",  # remainder 30: the last character of the alphabet
]
VALID = PUBLISHED + HAND_MADE


def reference_check(first17: str) -> str:
    """GB 32100-2015 §5: C18 = 31 - (sum of value x weight mod 31), 31 written as 0."""
    total = 0
    for position, char in enumerate(first17):
        total += ALPHABET.index(char) * WEIGHTS[position]
    remainder = 31 - total % 31
    return "0" if remainder == 31 else ALPHABET[remainder]


def test_the_literal_weights_are_powers_of_three_mod_31() -> None:
    assert WEIGHTS == [pow(3, i, 31) for i in range(17)]


def test_the_vectors_are_valid_by_the_reference_and_cover_every_position() -> None:
    for code in VALID:
        assert reference_check(code[:17]) == code[17], code
    for position in range(17):
        assert any(code[position] != "0" for code in VALID), position


@pytest.mark.parametrize("code", VALID)
def test_each_vector_is_valid_in_every_form_of_the_rule(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]
    assert uscc_problem(code) is None
    assert is_valid_uscc(code)
    frame = pl.DataFrame({"c": [code]}).select(uscc_valid(pl.col("c")).alias("ok"),
                                               uscc_reason(pl.col("c")).alias("why"))
    assert frame.row(0) == (True, None)


@pytest.mark.parametrize("code", VALID)
def test_every_other_check_character_is_refused_in_every_form(code: str) -> None:
    wrong = [code[:17] + ch for ch in ALPHABET if ch != code[17]]
    assert not any(is_valid_uscc(w) for w in wrong)
    frame = pl.DataFrame({"c": wrong}).select(uscc_valid(pl.col("c")).alias("ok"),
                                              uscc_reason(pl.col("c")).alias("why"))
    assert not frame["ok"].any()
    expected = [f"USCC check character is {w[17]!r}; expected {code[17]!r}" for w in wrong]
    assert frame["why"].to_list() == expected


def test_one_changed_body_character_is_caught() -> None:
    for code in VALID:
        for position in range(17):
            for char in ALPHABET:
                if char == code[position]:
                    continue
                changed = code[:position] + char + code[position + 1:]
                assert is_valid_uscc(changed) == (reference_check(changed[:17]) == changed[17])


def _gb11714_check(digits: str) -> str:
    """GB 11714 organisation code check: weights 3 7 9 10 5 8 4 2, C9 = 11 - (sum mod 11);
    10 is written X and 11 is written 0."""
    c = 11 - sum(int(d) * w for d, w in zip(digits, [3, 7, 9, 10, 5, 8, 4, 2], strict=True)) % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def test_a_published_codes_organisation_part_agrees_with_gb11714() -> None:
    assert _gb11714_check("60003734") == "91110000600037341L"[16]


def test_generated_codes_pass_the_reference_and_corrupted_ones_fail() -> None:
    numbers = np.arange(10_000_000, 10_000_000 + 400 * 99_991, 99_991)
    divisions = np.array(["420106", "110108", "350100", "440305"] * 100)
    for code, division, number in zip(make_usccs(divisions, numbers), divisions, numbers, strict=True):
        assert reference_check(code[:17]) == code[17], code
        assert code[:2] == "91" and code[2:8] == division  # enterprise, market regulation; the division
        assert code[8:16] == f"{number:08d}" and code[16] == _gb11714_check(code[8:16])
    corrupt = make_usccs(divisions, numbers, corrupt=np.ones(len(numbers), dtype=bool))
    assert all(reference_check(c[:17]) != c[17] for c in corrupt)


# Every branch of the reason, its words written out here; the Polars check and the str check agree.
REASONS = [
    ("91350100M000100Y43", None),
    ("91350100M000100Y4", "USCC must be 18 characters; got 17"),
    ("91350100M000100Y433", "USCC must be 18 characters; got 19"),
    ("", "USCC must be 18 characters; got 0"),
    ("91350100M000100Y4I", "USCC contains characters outside GB 32100-2015's alphabet: 'I'"),  # one, as check
    ("9135010OM0S0100Y43", "USCC contains characters outside GB 32100-2015's alphabet: 'OS'"),
    ("91350100m000100y43", "USCC contains characters outside GB 32100-2015's alphabet: 'my'"),
    ("91350100-000100-43", "USCC contains characters outside GB 32100-2015's alphabet: '-'"),  # repeated
    ("91350100M000100Y44", "USCC check character is '4'; expected '3'"),
    ("914403001922038210", "USCC check character is '0'; expected '6'"),
]


@pytest.mark.parametrize(("code", "reason"), REASONS)
def test_each_reason_in_its_own_words_from_both_checks(code: str, reason: str | None) -> None:
    frame = pl.DataFrame({"c": [code]}).select(uscc_reason(pl.col("c")).alias("why"),
                                               uscc_valid(pl.col("c")).alias("ok"))
    assert frame.row(0) == (reason, reason is None)
    assert uscc_problem(code) == reason


def test_a_column_of_every_kind_is_checked_row_by_row() -> None:
    codes = [code for code, _ in REASONS]
    frame = pl.DataFrame({"c": codes}).select(uscc_reason(pl.col("c")).alias("why"),
                                              uscc_valid(pl.col("c")).alias("ok"))
    assert frame["why"].to_list() == [reason for _, reason in REASONS]
    assert frame["ok"].to_list() == [reason is None for _, reason in REASONS]


@pytest.mark.parametrize("body", ["91350100M000100Y", "91350100M000100Y43"])
def test_the_check_character_is_only_worked_out_from_exactly_17_characters(body: str) -> None:
    with pytest.raises(ValueError):
        uscc_check_char(body)
