"""The Unified Social Credit Code (GB 32100-2015): the one owner of the rule.

18 characters from ``USCC_ALPHABET``; characters 3-8 are the administrative division code; the 18th
is the check character: weights ``USCC_WEIGHTS`` over the first 17, check = 31 - (sum mod 31), and 31
maps to ``0``. The rule comes three ways, one per caller: on one string (``uscc_problem``,
``is_valid_uscc``), as Polars expressions (``uscc_valid``, ``uscc_reason``: ingest's validation) and
as a NumPy generator of valid codes (``make_usccs``: the synthetic city).
"""

from __future__ import annotations

import numpy as np
import polars as pl

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code."""
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    check = 31 - total % 31
    return USCC_ALPHABET[0 if check == 31 else check]


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid USCC (length, alphabet or check character), or None if it is."""
    if len(code) != 18:
        return f"USCC must be 18 characters; got {len(code)}"
    bad = sorted({ch for ch in code if ch not in _USCC_VALUE})
    if bad:
        return f"USCC contains characters outside GB 32100-2015's alphabet: {''.join(bad)!r}"
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"USCC check character is {code[17]!r}; expected {expected!r}"
    return None


def is_valid_uscc(code: str) -> bool:
    return uscc_problem(code) is None


def _quote(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("'"), expr, pl.lit("'")])


# USCC value of a character from its base-36 value: the alphabet skips I, O, S, V and Z.
_USCC_FROM_BASE36 = pl.Series(
    [v - (v > 18) - (v > 24) - (v > 28) - (v > 31) for v in range(36)], dtype=pl.Int64
)


def _uscc_value(char: pl.Expr) -> pl.Expr:
    return pl.lit(_USCC_FROM_BASE36).gather(char.str.to_integer(base=36, strict=False))


def uscc_valid(code: pl.Expr) -> pl.Expr:
    """Vectorised ``contract.is_valid_uscc`` in integer arithmetic (cheap enough for millions of codes)."""
    total = pl.sum_horizontal(
        _uscc_value(code.str.slice(i, 1)) * weight for i, weight in enumerate(USCC_WEIGHTS)
    )
    check = (31 - total % 31) % 31  # GB 32100-2015: 31 - (sum mod 31), and 31 maps to 0
    return code.str.contains(f"^[{USCC_ALPHABET}]{{18}}$") & (check == _uscc_value(code.str.slice(17, 1)))


def uscc_reason(code: pl.Expr) -> pl.Expr:
    """Vectorised ``contract.uscc_problem``: why each code is not a valid USCC, or null if it is."""
    value = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
    length = code.str.len_chars()
    outside = code.str.replace_all(f"[{USCC_ALPHABET}]", "")
    total = pl.sum_horizontal(
        code.str.slice(i, 1).replace_strict(value, default=0, return_dtype=pl.Int64) * weight
        for i, weight in enumerate(USCC_WEIGHTS)
    )
    check = 31 - total % 31
    expected = (
        pl.when(check == 31).then(0).otherwise(check)
        .replace_strict(dict(enumerate(USCC_ALPHABET)), return_dtype=pl.String)
    )
    actual = code.str.slice(17, 1)
    return (
        pl.when(length != 18)
        .then(pl.format("USCC must be 18 characters; got {}", length))
        .when(outside.str.len_chars() > 0)
        .then(pl.concat_str([
            pl.lit("USCC contains characters outside GB 32100-2015's alphabet: "),
            _quote(outside.str.split("").list.unique().list.sort().list.join("")),
        ]))
        .when(actual != expected)
        .then(pl.concat_str([
            pl.lit("USCC check character is "), _quote(actual), pl.lit("; expected "), _quote(expected),
        ]))
    )


_USCC_LUT = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_USCC_W = np.array(USCC_WEIGHTS, dtype=np.int64)


def _org_code_body(numbers: np.ndarray) -> np.ndarray:
    """The 9-character organisation code (GB 11714): 8 digits and its check character, as values."""
    digits = (numbers[:, None] // 10 ** np.arange(7, -1, -1)) % 10  # n x 8, values 0-9
    check = 11 - (digits @ np.array([3, 7, 9, 10, 5, 8, 4, 2])) % 11
    # GB 11714: 10 -> 'X', 11 -> '0'; 'X' is value 29 in the USCC alphabet.
    check_val = np.where(check == 11, 0, np.where(check == 10, USCC_ALPHABET.index("X"), check))
    return np.concatenate([digits, check_val[:, None]], axis=1)


def make_usccs(
    divisions: np.ndarray, numbers: np.ndarray, *, corrupt: np.ndarray | None = None
) -> np.ndarray:
    """Vectorised USCCs: '91' (enterprise registered by market regulation) + division + org code + check.

    ``numbers`` (distinct integers < 10**8) make the codes distinct. Where ``corrupt`` is True the
    check character is deliberately wrong (for dirty rows).
    """
    n = len(numbers)
    div = np.asarray(divisions, dtype="U6").astype("S6").view(np.uint8).reshape(n, 6) - ord("0")
    head = np.tile(np.array([9, 1], dtype=np.int64), (n, 1))
    values = np.concatenate([head, div.astype(np.int64), _org_code_body(np.asarray(numbers))], axis=1)
    check = 31 - (values @ _USCC_W) % 31
    check = np.where(check == 31, 0, check)
    if corrupt is not None:
        check = np.where(corrupt, (check + 1 + np.arange(n) % 29) % 31, check)
    chars = _USCC_LUT[np.concatenate([values, check[:, None]], axis=1)]
    return np.ascontiguousarray(chars).view("S18").ravel().astype("U18")
