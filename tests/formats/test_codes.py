"""Weight formats: SP2-4 table, canonical codes, half-away rounding, one encoder for NumPy and torch."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rowmix.formats import (
    FIXED4,
    FIXED8,
    SP2_4,
    SP2_CANONICAL_CODES,
    SP2_VALUES,
    RowFormat,
    Scheme,
    codes_to_values,
    illegal_value_mask,
    quantize_values,
    round_half_away,
    values_to_codes,
)

FIXED_FORMATS = [RowFormat(Scheme.FIXED, b) for b in range(2, 9)]
ALL_FORMATS = FIXED_FORMATS + [SP2_4]


def test_sp2_table_matches_the_code_layout():
    # v = (-1)^s * ((c1 ? 1 << (3 - c1) : 0) + (c2 ? 4 : 0)), code = [s | c1(2) | c2(1)]
    for code in range(16):
        s, c1, c2 = code >> 3, (code >> 1) & 3, code & 1
        v = (1 << (3 - c1) if c1 else 0) + (4 if c2 else 0)
        assert SP2_VALUES[code] == (-v if s else v)
    assert list(SP2_VALUES) == [0, 4, 4, 8, 2, 6, 1, 5, 0, -4, -4, -8, -2, -6, -1, -5]


def test_sp2_all_16_codes_decode_and_canonical_encoding():
    decoded = codes_to_values(np.arange(16), "SP2")
    assert np.array_equal(decoded, SP2_VALUES)
    levels = np.array([-8, -6, -5, -4, -2, -1, 0, 1, 2, 4, 5, 6, 8])
    codes = values_to_codes(levels, SP2_4)
    assert np.array_equal(codes_to_values(codes, "SP2"), levels)
    assert set(codes.tolist()) == SP2_CANONICAL_CODES
    assert values_to_codes(np.array([0]), SP2_4)[0] == 0b0000  # never 0b1000
    assert values_to_codes(np.array([4, -4]), SP2_4).tolist() == [0b0010, 0b1010]  # c1 = 1, c2 = 0
    with pytest.raises(ValueError, match="not an SP2-4 value"):
        values_to_codes(np.array([3]), SP2_4)


@pytest.mark.parametrize("fmt", FIXED_FORMATS, ids=str)
def test_fixed_codes_round_trip_and_the_illegal_code(fmt):
    q = fmt.qmax
    v = np.arange(-q, q + 1)
    codes = values_to_codes(v, fmt)
    assert np.array_equal(codes_to_values(codes, fmt.group), v)
    assert not illegal_value_mask(v, fmt).any()
    # -2^(b-1) is never exported but decodes as plain two's complement and is flagged.
    with pytest.raises(ValueError, match="out of range"):
        values_to_codes(np.array([-q - 1]), fmt)
    if fmt.bits in (4, 8):
        illegal = codes_to_values(np.array([1 << (fmt.bits - 1)]), fmt.group)
        assert illegal[0] == -(1 << (fmt.bits - 1))
        assert illegal_value_mask(illegal, fmt).all()


def test_containers_sign_extend_narrow_fixed_rows():
    f3 = RowFormat("FIXED", 3)
    assert f3.group == "FIXED4" and RowFormat("FIXED", 6).group == "FIXED8"
    assert values_to_codes(np.array([-3, 3]), f3).tolist() == [0b1101, 0b0011]
    assert illegal_value_mask(codes_to_values(np.array([0b1100]), "FIXED4"), f3).all()  # -4 in a FIXED-3 row


def test_round_half_away_from_zero():
    u = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.49], np.float32)
    assert round_half_away(u).tolist() == [-3, -2, -1, 1, 2, 3, 0, -0]


def test_fixed_ties_and_clamp():
    w = np.array([[0.25, -0.25, 0.75, 10.0, -10.0]], np.float32)
    v = quantize_values(w, np.float32(0.5), FIXED4)
    assert v.tolist() == [[1, -1, 2, 7, -7]]  # 0.5 -> 1, 1.5 -> 2 (not to even), clamp +-7


def test_sp2_ties_go_to_the_larger_magnitude():
    mids = np.array([0.5, 1.5, 3.0, 4.5, 5.5, 7.0], np.float32)
    v = quantize_values(np.concatenate([mids, -mids]), np.float32(1.0), SP2_4)
    assert v.tolist() == [1, 2, 4, 5, 6, 8, -1, -2, -4, -5, -6, -8]
    below = quantize_values(np.nextafter(mids, np.float32(0)), np.float32(1.0), SP2_4)
    assert below.tolist() == [0, 1, 2, 4, 5, 6]
    assert quantize_values(np.array([100.0], np.float32), np.float32(1.0), SP2_4).tolist() == [8]


floats = hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 40)),
                    elements=st.floats(-50, 50, width=32, allow_subnormal=False))


@settings(max_examples=200, deadline=None)
@given(w=floats, scale=st.floats(0.0009765625, 10, width=32), fmt=st.sampled_from(ALL_FORMATS))
def test_one_encoder_numpy_and_torch_agree_bit_for_bit(w, scale, fmt):
    s = np.full((w.shape[0], 1), scale, np.float32)
    a = quantize_values(w, s, fmt)
    b = quantize_values(torch.from_numpy(w), torch.from_numpy(s), fmt).numpy()
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert np.abs(a).max() <= fmt.qmax
    # every value is a legal level, and the codes round-trip
    assert set(np.abs(a).astype(int).ravel()) <= set(fmt.levels)
    assert np.array_equal(codes_to_values(values_to_codes(a, fmt), fmt.group), a)


@settings(max_examples=200, deadline=None)
@given(w=floats, scale=st.floats(0.015625, 10, width=32), fmt=st.sampled_from(ALL_FORMATS))
def test_encoder_picks_a_nearest_level(w, scale, fmt):
    v = quantize_values(w, np.float32(scale), fmt)
    u = np.clip(np.abs(w.astype(np.float64) / np.float32(scale)), 0, fmt.qmax)
    levels = np.array(fmt.levels, np.float64)
    best = np.abs(u[..., None] - levels).min(axis=-1)
    assert np.all(np.abs(np.abs(v) - u) <= best + 1e-5)
