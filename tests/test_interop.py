"""ternhd.interop: GGUF TQ2_0 / TQ1_0 blocks, byte for byte against the gguf package's numpy
reference (gguf.quants), and search on the rows of a ternary GGUF tensor."""
import numpy as np
import pytest

import ternhd
from ternhd import interop

gguf = pytest.importorskip("gguf")
gq = pytest.importorskip("gguf.quants")
T = gguf.GGMLQuantizationType
QTYPES = ["TQ1_0", "TQ2_0"]


def rand_trits(rng, shape, p_zero=0.3):
    return rng.choice(np.array([-1, 0, 1], np.int8), size=shape, p=[(1 - p_zero) / 2, p_zero, (1 - p_zero) / 2])


def test_block_sizes_match_gguf():
    for q in QTYPES:
        assert gguf.constants.GGML_QUANT_SIZES[getattr(T, q)] == (256, interop.BLOCK_BYTES[q])
        assert int(getattr(T, q)) == interop.GGUF_TYPES[q]


@pytest.mark.parametrize("qtype", QTYPES)
@pytest.mark.parametrize("rows,dim", [(1, 256), (7, 512), (33, 1024)])
def test_to_gguf_equals_gguf_quantize_byte_for_byte(qtype, rows, dim):
    rng = np.random.default_rng(rows * dim)
    t = rand_trits(rng, (rows, dim))
    t[0, :256] = 0  # an all-zero block: gguf writes d = 0
    if rows > 1:
        t[1, -256:] = 1
    packed = ternhd.pack_ternary(t)
    ref = gq.quantize(t.astype(np.float32), getattr(T, qtype))
    mine = interop.to_gguf(packed, dim, qtype)
    assert mine.dtype == np.uint8 and mine.shape == ref.shape
    assert mine.tobytes() == ref.tobytes()
    back, scales = interop.from_gguf(ref, qtype)
    assert np.array_equal(back, packed)
    assert np.array_equal(scales, np.any(t.reshape(rows, -1, 256) != 0, axis=2).astype(np.float16))
    # gguf's dequantize of the blocks = scales * our trits
    deq = gq.dequantize(ref, getattr(T, qtype))
    ours = (ternhd.unpack_ternary(back, dim).reshape(rows, -1, 256) * scales.astype(np.float32)[..., None])
    assert np.array_equal(deq, ours.reshape(rows, dim))


@pytest.mark.parametrize("qtype", QTYPES)
def test_real_valued_tensor_round_trips_losslessly(qtype):
    # a float tensor quantized by gguf (absmax scale per block): blocks -> (packed, scales) -> blocks
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((12, 768)) * rng.uniform(0.01, 5, (12, 1))).astype(np.float32)
    blocks = gq.quantize(x, getattr(T, qtype))
    packed, scales = interop.from_gguf(blocks, qtype)
    assert scales.dtype == np.float16 and scales.shape == (12, 3)
    assert interop.to_gguf(packed, 768, qtype, scales).tobytes() == blocks.tobytes()
    # and the other way: ternhd rows with arbitrary float16 scales (negative, subnormal) survive
    s = rng.standard_normal((12, 3)).astype(np.float16)
    s[0, 0] = np.float16(-0.0)
    s[1, 1] = np.float16(6e-8)
    p2, s2 = interop.from_gguf(interop.to_gguf(packed, 768, qtype, s), qtype)
    assert np.array_equal(p2, packed) and s2.view(np.uint16).tobytes() == s.view(np.uint16).tobytes()


def test_tq1_and_tq2_convert_into_each_other():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 512)).astype(np.float32)
    b1 = gq.quantize(x, T.TQ1_0)
    p, s = interop.from_gguf(b1, "TQ1_0")
    b2 = interop.to_gguf(p, 512, T.TQ2_0, s)
    assert np.array_equal(gq.dequantize(b2, T.TQ2_0), gq.dequantize(b1, T.TQ1_0))


def test_every_canonical_tq1_byte_decodes_like_gguf():
    # all 3^5 digit patterns through one qs byte, against gguf's dequantize
    digits = np.array(np.meshgrid(*[np.arange(3)] * 5, indexing="ij")).reshape(5, -1).T  # (243, 5)
    t = np.zeros((243, 256), np.int8)
    for g in range(5):
        t[:, g * 32] = digits[:, g] - 1  # value g*32 lives in byte 0, digit g
    blocks = gq.quantize(t.astype(np.float32), T.TQ1_0)
    assert len({int(b) for b in blocks[:, 0]}) == 243
    p, _ = interop.from_gguf(blocks, "TQ1_0")
    assert np.array_equal(ternhd.unpack_ternary(p, 256), t)
    assert interop.to_gguf(p, 256, "TQ1_0").tobytes() == blocks.tobytes()


def test_torch_rows_in():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    p = ternhd.pack_ternary(rand_trits(rng, (3, 256)))
    assert np.array_equal(interop.to_gguf(torch.from_numpy(p), 256), interop.to_gguf(p, 256))


# ----------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    rng = np.random.default_rng(4)
    t = rand_trits(rng, (2, 512))
    p = ternhd.pack_ternary(t)
    with pytest.raises(ValueError, match="dim"):
        interop.to_gguf(ternhd.pack_ternary(t[:, :300]), 300)
    with pytest.raises(ValueError, match="packed"):
        interop.to_gguf(p, 256)
    with pytest.raises(ValueError, match="qtype"):
        interop.to_gguf(p, 512, "Q4_0")
    with pytest.raises(ValueError, match="qtype"):
        interop.from_gguf(np.zeros(34, np.uint8), T.Q8_0)
    with pytest.raises(ValueError, match="scales"):
        interop.to_gguf(p, 512, scales=np.ones((2, 3)))
    bad = p.copy()
    bad[0, 5] = 0xFF  # code 11
    with pytest.raises(ValueError):
        interop.to_gguf(bad, 512)
    blocks = interop.to_gguf(p, 512, "TQ2_0")
    with pytest.raises(ValueError, match="data.*truncated"):
        interop.from_gguf(blocks.reshape(-1)[:-1], "TQ2_0")
    with pytest.raises(ValueError, match="data.*truncated"):
        interop.from_gguf(blocks.reshape(-1)[:-66], "TQ2_0", n_per_row=512)
    with pytest.raises(ValueError, match="data"):
        interop.from_gguf(blocks[:, :-1], "TQ2_0")
    with pytest.raises(ValueError, match="n_per_row"):
        interop.from_gguf(blocks.reshape(-1), "TQ2_0", n_per_row=100)
    with pytest.raises(TypeError, match="data"):
        interop.from_gguf(blocks.astype(np.int16), "TQ2_0")


def test_non_ternary_tq2_code_is_refused():
    p = ternhd.pack_ternary(np.zeros((2, 512), np.int8))
    blocks = interop.to_gguf(p, 512, "TQ2_0").copy()
    blocks[1, 66 + 40] |= 0b1100  # block 1 of row 1, byte 40: value 128 + 32 + 8 gets code 3
    with pytest.raises(ValueError, match=r"data: block 1 of row 1 .*code 3 at value 168.*not a ternary value"):
        interop.from_gguf(blocks, "TQ2_0")


def test_non_canonical_tq1_byte_is_refused():
    canonical = {(q * 256 + 242) // 243 for q in range(243)}
    junk = next(b for b in range(256) if b not in canonical)
    blocks = interop.to_gguf(ternhd.pack_ternary(np.zeros((1, 256), np.int8)), 256, "TQ1_0").copy()
    blocks[0, 7] = junk
    with pytest.raises(ValueError, match=f"data: .*non-canonical TQ1_0 byte {junk} at offset 7"):
        interop.from_gguf(blocks, "TQ1_0")


# ----------------------------------------------------------------------------- GGUF files
def write_gguf(path, tensors):
    w = gguf.GGUFWriter(str(path), "ternhd-test")
    for name, data, raw in tensors:
        w.add_tensor(name, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_search_rows_of_a_ternary_gguf_tensor(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((300, 1024)).astype(np.float32)  # a "weight matrix" of 300 rows
    path = tmp_path / "model.gguf"
    write_gguf(path, [("blk.0.w", gq.quantize(w, T.TQ2_0), T.TQ2_0),
                      ("blk.1.w", gq.quantize(w[:50], T.TQ1_0), T.TQ1_0),
                      ("norm", w[0], None)])
    got = interop.read_gguf(path)
    assert sorted(got) == ["blk.0.w", "blk.1.w"]
    tt = got["blk.0.w"]
    assert tt.shape == (300, 1024) and tt.qtype == "TQ2_0" and tt.packed.shape == (300, 256)
    reader = gguf.GGUFReader(str(path))
    raw = {t.name: t for t in reader.tensors}
    assert tt.to_gguf().tobytes() == np.asarray(raw["blk.0.w"].data).tobytes()
    assert np.array_equal(tt.dequantize(), gq.dequantize(np.asarray(raw["blk.0.w"].data), T.TQ2_0))
    # top-k on the packed rows vs an independent float reference on the dequantized signs
    signs = np.sign(gq.dequantize(np.asarray(raw["blk.0.w"].data), T.TQ2_0))
    nrm = np.linalg.norm(signs, axis=1, keepdims=True)
    ref = (signs[:8] @ signs.T) / (nrm[:8] * nrm.T)
    scores, ids = tt.topk(tt.packed[:8], 5)
    ref_ids = np.argsort(-ref, axis=1, kind="stable")[:, :5]
    assert np.array_equal(ids, ref_ids)
    assert np.allclose(scores, np.take_along_axis(ref, ref_ids, 1), atol=1e-6)
    s2, i2 = tt.index().topk(tt.packed[:8], 5)
    assert np.array_equal(i2, ids)
    assert np.array_equal(got["blk.1.w"].packed, tt.packed[:50])  # same signs through TQ1_0
    with pytest.raises(ValueError, match="tensor: 'norm' has type F32"):
        interop.read_gguf(path, names="norm")
    with pytest.raises(KeyError, match="names"):
        interop.read_gguf(path, names=["missing"])


def test_truncated_gguf_tensor_data(tmp_path):
    class FakeTensor:  # what a reader hands over when the file ends early
        name = "w"
        tensor_type = T.TQ2_0
        shape = np.array([512, 4])
        data = np.zeros(4 * 132 - 10, np.uint8)

    with pytest.raises(ValueError, match="data.*truncated"):
        interop.TernaryTensor.from_reader(FakeTensor())
