"""Triton pack / unpack against the C++ path (interpreter on CPU, or a real GPU)."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

import ternhd  # noqa: E402
from ternhd import kernels as K  # noqa: E402

DIMS = [1, 3, 4, 13, 64, 1027] + ([4096 * 3 + 1, 4096] if DEVICE == "cuda" else [])


def trits(rng, shape, zero=0.3):
    t = rng.integers(-1, 2, size=shape).astype(np.int8)
    t[rng.random(shape) < zero] = 0
    return t


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("layout", ["sign", "offset"])
def test_pack_unpack_match_cpp(dim, layout):
    rng = np.random.default_rng(dim)
    t = trits(rng, (2, 3, dim))
    ref = ternhd.pack_ternary(t, layout=layout)
    got = K.pack_ternary(torch.from_numpy(t).to(DEVICE), layout=layout)
    assert got.dtype == torch.uint8 and got.device.type == DEVICE
    np.testing.assert_array_equal(got.cpu().numpy(), ref)
    back = K.unpack_ternary(torch.from_numpy(ref).to(DEVICE), dim, layout=layout)
    assert back.dtype == torch.int8
    np.testing.assert_array_equal(back.cpu().numpy(), t)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.float64, torch.int64, torch.uint8, torch.float16])
def test_pack_other_dtypes(dtype):
    rng = np.random.default_rng(1)
    t = trits(rng, (5, 11))
    if dtype in (torch.bool, torch.uint8):
        t = np.abs(t)
    src = torch.from_numpy(t).to(dtype)
    ref = ternhd.pack_ternary(src.numpy() if dtype != torch.float16 else t)
    np.testing.assert_array_equal(K.pack_ternary(src.to(DEVICE)).cpu().numpy(), ref)


def test_known_byte_and_padding():
    got = K.pack_ternary(torch.tensor([1, 0, -1, 1, -1], dtype=torch.int8, device=DEVICE))
    assert got.cpu().tolist() == [73, 0b10000000]
    off = K.pack_ternary(torch.tensor([1, 0, -1, 1, -1], dtype=torch.int8, device=DEVICE), layout="offset")
    assert off.cpu().tolist() == ternhd.pack_ternary(np.array([1, 0, -1, 1, -1], np.int8), layout="offset").tolist()


@pytest.mark.parametrize("bad", [2, -2, 0.5, float("nan")])
def test_pack_rejects_values(bad):
    t = torch.zeros(9, dtype=torch.float32)
    t[7] = bad
    with pytest.raises(ValueError, match="^t:"):
        K.pack_ternary(t.to(DEVICE))
    if float(bad).is_integer():
        with pytest.raises(ValueError, match="^t:"):
            K.pack_ternary(t.to(torch.int8).to(DEVICE))


@pytest.mark.parametrize("bad", [2, -2, 127, -128])
@pytest.mark.parametrize("offset", [0, 1])
def test_pack_word_path_rejects_values_and_handles_offsets(bad, offset):
    """int8 rows with D % 4 == 0 go through the word kernel when 4-byte aligned (offset 0), else the
    general one (a contiguous view starting one byte in): same bytes, same errors."""
    rng = np.random.default_rng(5)
    flat = torch.from_numpy(trits(rng, (3 * 8 + 1,))).to(DEVICE)
    t = flat[offset:offset + 24].view(3, 8)
    assert t.is_contiguous()
    np.testing.assert_array_equal(K.pack_ternary(t).cpu().numpy(), ternhd.pack_ternary(t.cpu().numpy()))
    t2 = t.clone() if offset == 0 else t
    t2[2, 5] = bad
    with pytest.raises(ValueError, match="^t:"):
        K.pack_ternary(t2)


def test_unpack_rejects_code_11_inside_dim_only():
    p = torch.tensor([[0b01001011]], dtype=torch.uint8, device=DEVICE)  # 4th trit is 11
    with pytest.raises(ValueError, match="^packed:.*0b11"):
        K.unpack_ternary(p, 4)
    assert K.unpack_ternary(p, 3).cpu().tolist() == [[1, 0, -1]]  # the 11 lies in the padding
    with pytest.raises(ValueError, match="^packed:.*0b11"):
        K.unpack_ternary(torch.tensor([0b11000000], dtype=torch.uint8, device=DEVICE), 1, layout="offset")


def test_argument_errors():
    with pytest.raises(TypeError, match="^packed:"):
        K.unpack_ternary(torch.zeros(3, dtype=torch.int8, device=DEVICE), 12)
    with pytest.raises(ValueError, match="^packed:"):
        K.unpack_ternary(torch.zeros(3, dtype=torch.uint8, device=DEVICE), 13)
    with pytest.raises(ValueError, match="^layout:"):
        K.pack_ternary(torch.zeros(3, dtype=torch.int8, device=DEVICE), layout="nope")
    with pytest.raises(ValueError, match="^t:"):
        K.pack_ternary(torch.tensor(1, dtype=torch.int8, device=DEVICE))
    with pytest.raises(TypeError, match="^t:"):
        K.pack_ternary(np.zeros(4, np.int8))
    with pytest.raises(TypeError, match="^dim:"):
        K.unpack_ternary(torch.zeros(1, dtype=torch.uint8, device=DEVICE), 4.0)


def test_empty_shapes():
    assert K.pack_ternary(torch.zeros((0, 7), dtype=torch.int8, device=DEVICE)).shape == (0, 2)
    assert K.pack_ternary(torch.zeros((3, 0), dtype=torch.int8, device=DEVICE)).shape == (3, 0)
    assert K.unpack_ternary(torch.zeros((2, 0), dtype=torch.uint8, device=DEVICE), 0).shape == (2, 0)
