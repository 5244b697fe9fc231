"""Requantization against exact rational references (fractions.Fraction)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowmix.formats import (
    MultiplierError,
    RequantSpec,
    float_requant_exact,
    float_requant_terms,
    quantize_multiplier,
    requantize,
    requantize_float,
)

SINGLE16, SINGLE31, DOUBLE = RequantSpec("single", 16), RequantSpec("single", 31), RequantSpec("tflite_double", 31)
INT32 = (-(1 << 31), (1 << 31) - 1)


def ref_single(acc: int, m0: int, n: int, lo: int, hi: int) -> int:
    """floor(acc * M0 / 2^n + 1/2): exact rational, ties toward +infinity."""
    y = math.floor(Fraction(acc * m0, 1 << n) + Fraction(1, 2))
    return min(max(y, lo), hi)


def rha(x: Fraction) -> int:
    """Round half away from zero, exactly."""
    r = math.floor(abs(x) + Fraction(1, 2))
    return r if x >= 0 else -r


def ref_double(acc: int, m0: int, n: int, lo: int, hi: int) -> int:
    """TFLite/gemmlowp: x * 2^left; SaturatingRoundingDoublingHighMul, whose nudge (2^30, or 1 - 2^30
    for negative products) with C++'s truncating division rounds ties toward +infinity; then
    RoundingDivideByPOT, which rounds ties away from zero."""
    shift = 31 - n
    x = acc << max(shift, 0)
    high = math.floor(Fraction(x * m0, 1 << 31) + Fraction(1, 2))
    return min(max(rha(Fraction(high, 1 << max(-shift, 0))), lo), hi)


@settings(max_examples=500, deadline=None)
@given(acc=st.integers(-(1 << 31), (1 << 31) - 1), m0=st.integers(1 << 15, (1 << 16) - 1), n=st.integers(1, 62))
def test_single16_matches_the_rational_reference(acc, m0, n):
    assert requantize(np.array([acc]), m0, n, *INT32)[0] == ref_single(acc, m0, n, *INT32)


@settings(max_examples=500, deadline=None)
@given(acc=st.integers(-(1 << 31), (1 << 31) - 1), m0=st.integers(1 << 30, (1 << 31) - 1), n=st.integers(1, 62))
def test_single31_matches_the_rational_reference(acc, m0, n):
    assert requantize(np.array([acc]), m0, n, *INT32, SINGLE31)[0] == ref_single(acc, m0, n, *INT32)


@settings(max_examples=500, deadline=None)
@given(acc=st.integers(-(1 << 20), 1 << 20), m0=st.integers(1 << 30, (1 << 31) - 1), n=st.integers(12, 62))
def test_tflite_double_matches_the_rational_reference(acc, m0, n):
    if not INT32[0] <= acc << max(31 - n, 0) <= INT32[1]:  # TFLite would overflow int32; rowmix refuses
        with pytest.raises(OverflowError):
            requantize(np.array([acc]), m0, n, *INT32, DOUBLE)
        return
    assert requantize(np.array([acc]), m0, n, *INT32, DOUBLE)[0] == ref_double(acc, m0, n, *INT32)


def tie_cases(n: int, m_bits: int):
    """(acc, M0) with acc * M0 = (2j + 1) * 2^(n-1) exactly: y = j + 1/2 before rounding."""
    if n <= m_bits:  # M0 = q * 2^(n-1), q odd, M0 in [2^(m-1), 2^m): odd acc gives a tie
        q = 1 if n == m_bits else (1 << (m_bits - n)) + 1
        m0 = q << (n - 1)
        return [(acc, m0) for acc in (1, 3, 5, -1, -3, -5, 2_000_001, -2_000_001)]
    m0 = 1 << (m_bits - 1)  # acc = (2j + 1) * 2^(n - m_bits)
    shift = n - m_bits
    odd = [o for o in (1, 3, -1, -3, 5, -5) if INT32[0] <= o << shift <= INT32[1]]
    return [(o << shift, m0) for o in odd]


@pytest.mark.parametrize("spec", [SINGLE16, SINGLE31], ids=["m16", "m31"])
@pytest.mark.parametrize("n", [1, 2, 16, 17, 31, 40, 46, 61, 62])
def test_exact_ties_round_up_and_negative_ties_toward_plus_infinity(spec, n):
    cases = tie_cases(n, spec.m_bits)
    if spec is SINGLE16 and n > 47:
        assert not cases  # |acc * M0| < 2^47: no int32 accumulator reaches a tie this far
        return
    assert cases
    for acc, m0 in cases:
        exact = Fraction(acc * m0, 1 << n)
        assert exact.denominator == 2  # really a tie
        wide = (-(1 << 62), 1 << 62)
        y = requantize(np.array([acc]), m0, n, *wide, spec)[0]
        assert y == math.ceil(exact) == ref_single(acc, m0, n, *wide)


def test_n62_extreme():
    # acc = -2^31, M0 = 2^30, n = 62: exactly -1/2, rounds to 0
    assert requantize(np.array([-(1 << 31)]), 1 << 30, 62, *INT32, SINGLE31)[0] == 0


def test_tie_examples_single_vs_double():
    # x * 0.25 with x = -6: double rounding -> -2 (the tie falls in RoundingDivideByPOT, half away),
    # single rounding -> -1 (half up). With M = 0.5 the tie falls in SRDHM, which also rounds up.
    m0, n = quantize_multiplier(0.25, DOUBLE)
    assert requantize(np.array([-6, 6]), m0, n, *INT32, DOUBLE).tolist() == [-2, 2]
    m0, n = quantize_multiplier(0.25, SINGLE31)
    assert requantize(np.array([-6, 6]), m0, n, *INT32, SINGLE31).tolist() == [-1, 2]
    m0, n = quantize_multiplier(0.5, DOUBLE)
    assert requantize(np.array([-3, 3]), m0, n, *INT32, DOUBLE).tolist() == [-1, 2]
    m0, n = quantize_multiplier(0.5)
    assert requantize(np.array([3, -3, 5]), m0, n, *INT32).tolist() == [2, -1, 3]


def test_saturation_at_both_ends_and_relu():
    m0, n = quantize_multiplier(1.0)
    assert requantize(np.array([-1000, -8, 3, 1000]), m0, n, -7, 7).tolist() == [-7, -7, 3, 7]
    assert requantize(np.array([-1000, -1, 3, 1000]), m0, n, 0, 15).tolist() == [0, 0, 3, 15]


@settings(max_examples=300, deadline=None)
@given(m=st.floats(1e-12, 1e4, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_range_and_error(m):
    for spec in (SINGLE16, SINGLE31):
        m0, n = quantize_multiplier(m, spec)
        if m0 == 0:  # flushed: n would exceed 62
            assert m < 2.0 ** (spec.m_bits - 62)
            continue
        lo, hi = spec.m0_range
        assert lo <= m0 <= hi and 1 <= n <= 62
        assert abs(Fraction(m0, 1 << n) - Fraction(m)) <= Fraction(m) * Fraction(1, 1 << spec.m_bits)


def test_quantize_multiplier_carry_and_limits():
    # q * 2^16 rounds up to 2^16 -> M0 = 2^15 with the exponent bumped
    m = 1.0 - 2.0 ** -20
    m0, n = quantize_multiplier(m)
    assert (m0, n) == (1 << 15, 15)
    assert quantize_multiplier(0.0) == (0, 1)
    assert quantize_multiplier(1e-30) == (0, 1)  # n > 62 flushes to zero
    with pytest.raises(MultiplierError):
        quantize_multiplier(1e6)  # needs n < 1
    with pytest.raises(MultiplierError):
        quantize_multiplier(-1.0)


@settings(max_examples=300, deadline=None)
@given(acc=st.lists(st.integers(-(1 << 31) + 1, (1 << 31) - 1), min_size=1, max_size=20),
       bias=st.integers(-(1 << 20), 1 << 20), m0=st.integers(1 << 15, (1 << 16) - 1), n=st.integers(1, 62))
def test_float_path_equals_the_reference_whenever_its_bound_holds(acc, bias, m0, n):
    a = np.array(acc, np.int64)
    bound = int(np.abs(a).max()) + abs(bias)
    if not float_requant_exact(bound, np.array([m0]), np.array([n])):
        return
    want = requantize(a + bias, m0, n, -(1 << 40), 1 << 40)
    got = requantize_float(a.astype(np.float64), *float_requant_terms(m0, n, bias), -(1 << 40), 1 << 40)
    assert np.array_equal(got, want)


def test_float_path_exact_ties():
    n, m0 = 30, 1 << 15
    acc = np.array([((2 * j + 1) << (n - 1)) // m0 for j in range(-50, 50)], np.float64)
    got = requantize_float(acc, *float_requant_terms(m0, n), -999, 999)
    assert np.array_equal(got, requantize(acc.astype(np.int64), m0, n, -999, 999))
