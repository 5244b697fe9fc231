"""Packing: little-nibble-first 4-bit codes, 8-bit bytes, zero padding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rowmix.formats import pack, packed_width, padded_length, unpack


def test_nibble_order_is_little_first():
    codes = np.array([[0x1, 0x2, 0x3]], np.uint8)
    packed = pack(codes, 4, 4)
    assert packed.tolist() == [[0x21, 0x03]]  # element 2j in bits 3..0, 2j+1 in bits 7..4, pad 0
    assert unpack(packed, 4, 4).tolist() == [[1, 2, 3, 0]]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), bits=st.sampled_from([4, 8]), align=st.sampled_from([2, 4, 16]))
def test_pack_unpack_round_trip(data, bits, align):
    codes = data.draw(hnp.arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(1, 70)),
                                 elements=st.integers(0, (1 << bits) - 1)))
    k = codes.shape[1]
    k_pad = padded_length(k, align)
    packed = pack(codes, bits, k_pad)
    assert packed.shape == (codes.shape[0], packed_width(bits, k_pad))
    out = unpack(packed, bits, k_pad)
    assert np.array_equal(out[:, :k], codes)
    assert not out[:, k:].any()


def test_pack_rejects_bad_widths():
    with pytest.raises(ValueError):
        pack(np.zeros((1, 3), np.uint8), 4, 3)  # odd k_pad for nibbles
    with pytest.raises(ValueError):
        pack(np.full((1, 2), 16, np.uint8), 4, 2)  # not a 4-bit code
