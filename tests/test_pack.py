"""pack_ternary / unpack_ternary against the numpy reference and the normative layout."""
import numpy as np
import pytest
import torch
from conftest import random_trits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ternhd
from ternhd import reference as ref

DIMS = [1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 127, 129, 255, 257, 511, 513, 1000, 4096, 4099]


def test_layout_is_the_design_example():
    # docs/FORMAT.md: pack_ternary([1, 0, -1, 1]) is the byte 0b01001001 (73).
    out = ternhd.pack_ternary(np.array([1, 0, -1, 1], dtype=np.int8))
    assert out.dtype == np.uint8 and out.tolist() == [73]


@pytest.mark.parametrize("value,code", [(0, 0b00), (1, 0b01), (-1, 0b10)])
@pytest.mark.parametrize("pos", range(4))
def test_layout_byte_by_byte(value, code, pos):
    t = np.zeros(4, np.int8)
    t[pos] = value
    # trit i at bit offset 6 - 2*(i % 4); "+1" bit at s, "-1" bit at s + 1
    assert ternhd.pack_ternary(t)[0] == code << (6 - 2 * pos)


def test_padding_trits_are_zero_bits():
    out = ternhd.pack_ternary(np.array([-1, -1, -1, -1, -1], dtype=np.int8))
    assert out.tolist() == [0b10101010, 0b10000000]


def test_all_zero_memory_is_zero_vector_and_popcount_counts_nonzeros(rng):
    assert (ternhd.unpack_ternary(np.zeros((2, 8), np.uint8), 32) == 0).all()
    t = random_trits(rng, (3, 101))
    p = ternhd.pack_ternary(t)
    assert np.array_equal(np.unpackbits(p, axis=1).sum(axis=1), (t != 0).sum(axis=1))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("rows", [0, 1, 7])
def test_pack_matches_reference(simd, rng, dim, rows):
    t = random_trits(rng, (rows, dim))
    p = ternhd.pack_ternary(t)
    assert p.shape == (rows, (dim + 3) // 4) and p.dtype == np.uint8
    assert np.array_equal(p, ref.pack_ternary(t))
    u = ternhd.unpack_ternary(p, dim)
    assert u.dtype == np.int8 and np.array_equal(u, t)


def test_large_aligned_and_unaligned_matrices(simd, rng):
    for dim in (4096, 4095):
        t = random_trits(rng, (300, dim))
        p = ternhd.pack_ternary(t)
        assert np.array_equal(p, ref.pack_ternary(t))
        assert np.array_equal(ternhd.unpack_ternary(p, dim), t)


@settings(max_examples=60, deadline=None)
@given(t=hnp.arrays(np.int8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=70),
                   elements=st.sampled_from([-1, 0, 1])))
def test_roundtrip_property(t):
    for path in ternhd.simd_paths():
        with ternhd.use_simd(path):
            p = ternhd.pack_ternary(t)
            assert np.array_equal(p, ref.pack_ternary(t))
            assert np.array_equal(ternhd.unpack_ternary(p, t.shape[-1]), t)


def test_views_non_contiguous_and_negative_strides(simd, rng):
    t = random_trits(rng, (20, 130))
    for view in (t[::2], t[:, ::-1], t[::-1, 3:], t.T.copy().T, np.asfortranarray(t)):
        assert np.array_equal(ternhd.pack_ternary(view), ref.pack_ternary(np.ascontiguousarray(view)))
    p = ternhd.pack_ternary(t)
    assert np.array_equal(ternhd.unpack_ternary(p[::-1], 130), t[::-1])


def test_torch_in_torch_out(rng):
    t = torch.from_numpy(random_trits(rng, (5, 77)))
    p = ternhd.pack_ternary(t)
    assert isinstance(p, torch.Tensor) and p.dtype == torch.uint8
    u = ternhd.unpack_ternary(p, 77)
    assert isinstance(u, torch.Tensor) and u.dtype == torch.int8 and torch.equal(u, t)
    # non-contiguous tensor views
    assert torch.equal(ternhd.unpack_ternary(ternhd.pack_ternary(t[:, ::1].t().contiguous().t()), 77), t)


def test_other_dtypes_holding_trits(rng):
    t = random_trits(rng, (4, 9))
    for dt in (np.int16, np.int32, np.int64, np.float32, np.float64):
        assert np.array_equal(ternhd.pack_ternary(t.astype(dt)), ref.pack_ternary(t))
    assert ternhd.pack_ternary([1, 0, -1, 1]).tolist() == [73]
    assert ternhd.pack_ternary(np.array([True, False, True, True])).tolist() == [0b01000101]


def test_offset_layout_roundtrip_and_codes(rng):
    # offset code: stored value t + 1 -> -1: 00, 0: 01, +1: 10
    p = ternhd.pack_ternary(np.array([-1, 0, 1, 0], dtype=np.int8), layout="offset")
    assert p.tolist() == [0b00011001]
    t = random_trits(rng, (6, 33))
    po = ternhd.pack_ternary(t, layout="offset")
    assert np.array_equal(ternhd.unpack_ternary(po, 33, layout="offset"), t)
    # the padding trits of the offset layout are value 0 too
    assert (ternhd.pack_ternary(np.array([1], np.int8), layout="offset") == 0b10010101).all()


@pytest.mark.parametrize("bad", [np.array([2], np.int8), np.array([-2, 0], np.int8), np.array([0.5]),
                                 np.array([127] * 100, np.int8), np.array([3], np.int64)])
def test_pack_rejects_values_outside_trits(simd, bad):
    with pytest.raises(ValueError, match="^t:"):
        ternhd.pack_ternary(bad)


def test_pack_rejects_bad_value_in_simd_body_and_tail(simd):
    for pos in (0, 63, 64, 127, 200, 258):
        t = np.zeros(259, np.int8)
        t[pos] = 5
        with pytest.raises(ValueError, match="^t:"):
            ternhd.pack_ternary(t)


def test_pack_bad_dtypes_and_shapes():
    with pytest.raises(TypeError, match="^t:"):
        ternhd.pack_ternary(np.array(["a"]))
    with pytest.raises(TypeError, match="^t:"):
        ternhd.pack_ternary(np.array([1 + 1j]))
    with pytest.raises(ValueError, match="^t:"):
        ternhd.pack_ternary(np.int8(1))
    with pytest.raises(ValueError, match="^layout:"):
        ternhd.pack_ternary(np.zeros(4, np.int8), layout="planes")


def test_unpack_rejects_code_11_everywhere(simd):
    for pos in (0, 15, 16, 40, 63):
        p = np.zeros(64, np.uint8)
        p[pos] = 0b00110000
        with pytest.raises(ValueError, match="^packed:.*0b11"):
            ternhd.unpack_ternary(p, 256)


def test_unpack_ignores_padding_bits_beyond_dim():
    p = np.array([0b01001011], np.uint8)  # trit 3 (padding for dim=3) has code 11
    assert ternhd.unpack_ternary(p, 3).tolist() == [1, 0, -1]


def test_unpack_bad_arguments():
    p = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="^packed:"):
        ternhd.unpack_ternary(p, 16)
    with pytest.raises(TypeError, match="^packed:"):
        ternhd.unpack_ternary(p.astype(np.int8), 12)
    with pytest.raises(TypeError, match="^dim:"):
        ternhd.unpack_ternary(p, 12.0)
    with pytest.raises(ValueError, match="^dim:"):
        ternhd.unpack_ternary(p, -1)
    with pytest.raises(ValueError, match="^layout:"):
        ternhd.unpack_ternary(p, 12, layout="x")


def test_empty_and_zero_dim(simd):
    assert ternhd.pack_ternary(np.zeros((3, 0), np.int8)).shape == (3, 0)
    assert ternhd.unpack_ternary(np.zeros((3, 0), np.uint8), 0).shape == (3, 0)
    assert ternhd.pack_ternary(np.zeros((0, 5), np.int8)).shape == (0, 2)
