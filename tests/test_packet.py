"""Packets: base-3 codec against the numpy reference, round trips, zero copy, streams, knowledge
packets, and the parser's behaviour on malformed, truncated, oversized and tampered input."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ternhd
from ternhd import knowledge as K
from ternhd import packet as P
from ternhd import reference


def _rand_packed(rng, rows, dim, p_zero=0.4):
    t = rng.choice(np.array([-1, 0, 1], np.int8), size=(rows, dim), p=[(1 - p_zero) / 2, p_zero, (1 - p_zero) / 2])
    return ternhd.pack_ternary(t)


def _resign(buf: bytearray) -> bytearray:
    """Recomputes a CRC32 packet's checksum, so a mutation gets past it to the field checks."""
    mv = memoryview(buf)
    struct.pack_into("<Q", buf, 64, zlib.crc32(mv[72:], zlib.crc32(mv[:64])))
    return buf


# ----------------------------------------------------------------------------- base-3 codec
SHAPES = [(0, 5), (1, 1), (1, 5), (3, 7), (4, 20), (7, 13), (2, 4096), (33, 100), (5, 0), (1, 3),
          (300, 1000), (1001, 333), (70, 4096)]  # the last ones span several thread tasks


@pytest.mark.parametrize("simd", ternhd.simd_paths())
@pytest.mark.parametrize("rows,dim", SHAPES)
def test_base3_matches_reference(simd, rows, dim):
    rng = np.random.default_rng(rows * 7919 + dim)
    p = _rand_packed(rng, rows, dim)
    with ternhd.use_simd(simd):
        enc = P.base3_encode(p, dim)
        ref = reference.base3_encode(p, dim) if rows else np.zeros(0, np.uint8)
        assert enc.dtype == np.uint8 and enc.shape == (-(-rows * dim // 5),)
        assert np.array_equal(enc, ref)
        dec = P.base3_decode(enc, rows, dim)
        assert np.array_equal(dec, p)
        assert np.array_equal(reference.base3_decode(enc, rows, dim), p)


def test_base3_known_bytes():
    # trits [1, 0, -1, 1, -1] -> digits 1 0 2 1 2 -> 81 + 0 + 18 + 3 + 2 = 104
    p = ternhd.pack_ternary(np.array([[1, 0, -1, 1, -1]], np.int8))
    assert P.base3_encode(p, 5).tolist() == [104]
    # 6 trits: second byte holds trit 5 = -1 as its first digit -> 2 * 81 = 162
    p6 = ternhd.pack_ternary(np.array([[0, 0, 0, 0, 0, -1]], np.int8))
    assert P.base3_encode(p6, 6).tolist() == [0, 162]
    assert P.base3_encode(ternhd.pack_ternary(-np.ones((1, 5), np.int8)), 5).tolist() == [242]


@pytest.mark.parametrize("simd", ternhd.simd_paths())
def test_base3_rejects_bad_input(simd):
    with ternhd.use_simd(simd):
        with pytest.raises(ValueError, match="^packed: contains the invalid"):
            P.base3_encode(np.array([[0b11000000]], np.uint8), 4)
        with pytest.raises(ValueError, match="^packed: contains the invalid"):
            P.base3_encode(np.full((3, 25), 0xFF, np.uint8), 100)  # fast path
        # code 11 in padding trits (beyond dim) is ignored, as unpack_ternary does
        assert P.base3_encode(np.array([[0b01000011]], np.uint8), 2).tolist() == [81 + 0]
        with pytest.raises(ValueError, match="^data: not a canonical"):
            P.base3_decode(np.array([243], np.uint8), 1, 5)
        with pytest.raises(ValueError, match="^data: not a canonical"):
            P.base3_decode(np.array([1], np.uint8), 1, 4)  # non-zero padding digit
        with pytest.raises(ValueError, match="^data: size"):
            P.base3_decode(np.zeros(3, np.uint8), 2, 5)
        with pytest.raises(ValueError, match="^packed: expected shape"):
            P.base3_encode(np.zeros((2, 3), np.uint8), 5)
        with pytest.raises(TypeError, match="^packed:"):
            P.base3_encode(np.zeros((2, 2), np.int8), 5)
        with pytest.raises(TypeError, match="^data:"):
            P.base3_decode(np.zeros((2, 2), np.uint8), 1, 1)
        with pytest.raises(ValueError, match="^dim: must be at least 0"):
            P.base3_decode(np.zeros(1, np.uint8), 1, -1)
        with pytest.raises(ValueError):
            ternhd._core.base3_decode(np.zeros(1, np.uint8), 2**62, 2**62)  # overflow is caught natively


# ----------------------------------------------------------------------------- round trips
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(0, 12), dim=st.integers(1, 150), encoding=st.sampled_from(P.ENCODINGS),
       checksum=st.sampled_from(["crc32", "xxh64"]), with_labels=st.booleans(), with_scales=st.booleans(),
       model_id=st.text(max_size=20), seed=st.integers(0, 2**64 - 1),
       extra=st.dictionaries(st.text(min_size=1, max_size=5).filter(lambda k: k not in P._RESERVED_KEYS),
                             st.one_of(st.integers(-10, 10), st.text(max_size=5), st.lists(st.booleans(), max_size=3)),
                             max_size=3),
       data_seed=st.integers(0, 2**32 - 1))
def test_roundtrip_property(rows, dim, encoding, checksum, with_labels, with_scales, model_id, seed, extra, data_seed):
    rng = np.random.default_rng(data_seed)
    p = _rand_packed(rng, rows, dim)
    labels = rng.integers(-2**40, 2**40, rows) if with_labels else None
    scales = rng.standard_normal(rows).astype(np.float32) if with_scales else None
    blob = P.dumps(p, dim, encoding=encoding, checksum=checksum, labels=labels, scales=scales, model_id=model_id,
                   projection="gaussian", seed=seed, threshold="std", tau=0.25, in_dim=17, **extra)
    pkt = P.loads(blob)
    assert pkt.dim == dim and pkt.count == rows and pkt.encoding == encoding and pkt.checksum == checksum
    assert np.array_equal(pkt.vectors, p)
    assert np.array_equal(pkt.unpack(), ternhd.unpack_ternary(p, dim))
    assert pkt.meta == dict(model_id=model_id, projection="gaussian", seed=seed, threshold="std", tau=0.25,
                            sparsity=None, in_dim=17, **extra)
    if with_labels:
        assert np.array_equal(pkt.labels, labels)
    else:
        assert pkt.labels is None
    if with_scales:
        assert np.array_equal(pkt.scales, scales)
    else:
        assert pkt.scales is None
    assert pkt.nbytes == len(blob)
    assert pkt.dumps() == blob  # re-serializing is byte exact
    expected = P.HEADER_SIZE + len(model_id.encode()) + P.payload_size(rows, dim, encoding)
    assert len(blob) >= expected


def test_base3_packets_are_smaller():
    rng = np.random.default_rng(0)
    p = _rand_packed(rng, 100, 4096)
    two = P.dumps(p, 4096)
    three = P.dumps(p, 4096, encoding="base3")
    assert len(two) - P.HEADER_SIZE == 100 * 1024
    assert len(three) - P.HEADER_SIZE == 100 * 4096 // 5
    assert (len(two) - P.HEADER_SIZE) / (len(three) - P.HEADER_SIZE) == pytest.approx(1.25, rel=1e-3)


@pytest.mark.parametrize("threshold,tau,sparsity,expect", [
    ("std", 0.3, None, dict(threshold="std", tau=0.3, sparsity=None)),
    ("batch", 0.5, None, dict(threshold="batch", tau=0.5, sparsity=None)),
    (0.125, 0.3, None, dict(threshold=0.125, tau=None, sparsity=None)),
    (None, 0.3, 0.7, dict(threshold="std", tau=None, sparsity=0.7)),
    (None, 0.3, None, dict(threshold=None, tau=None, sparsity=None)),
])
def test_threshold_modes_roundtrip(threshold, tau, sparsity, expect):
    p = np.zeros((1, 2), np.uint8)
    pkt = P.loads(P.dumps(p, 8, threshold=threshold, tau=tau, sparsity=sparsity))
    for k, v in expect.items():
        assert pkt.meta[k] == v


def test_zero_copy_views(tmp_path):
    rng = np.random.default_rng(3)
    p = _rand_packed(rng, 50, 200)
    blob = P.dumps(p, 200, labels=np.arange(50), scales=np.ones(50, np.float32))
    pkt = P.loads(blob)
    whole = np.frombuffer(blob, np.uint8)
    for arr in (pkt.vectors, pkt.labels, pkt.scales):
        assert np.shares_memory(arr, whole)
        assert not arr.flags.writeable
    assert bytes(pkt.payload) == p.tobytes()
    # bytearray / numpy input work too and stay zero-copy
    ba = bytearray(blob)
    assert np.shares_memory(P.loads(ba).vectors, np.frombuffer(ba, np.uint8))
    arr_in = np.frombuffer(blob, np.uint8)
    assert np.shares_memory(P.loads(arr_in).vectors, arr_in)
    # files: memory mapped by default
    path = tmp_path / "v.tnhd"
    assert P.save(path, p, 200, model_id="x") == path.stat().st_size
    got = P.load(path)
    assert np.array_equal(got.vectors, p) and got.meta["model_id"] == "x"
    assert not got.vectors.flags.owndata
    assert np.array_equal(P.load(path, mmap=False).vectors, p)
    # base-3 payloads decode into a fresh array
    b3 = P.loads(P.dumps(p, 200, encoding="base3"))
    assert b3.vectors.flags.owndata or b3.vectors.base is not None
    assert np.array_equal(b3.vectors, p)


def test_torch_input():
    torch = pytest.importorskip("torch")
    t = torch.randint(-1, 2, (4, 30), dtype=torch.int8)
    p = ternhd.pack_ternary(t)
    pkt = P.loads(P.dumps(p, 30))
    assert np.array_equal(pkt.vectors, p.numpy())


# ----------------------------------------------------------------------------- streams
def test_streams(tmp_path):
    rng = np.random.default_rng(5)
    items = [(_rand_packed(rng, r, d), d, enc) for r, d, enc in [(3, 10, "2bit"), (0, 7, "base3"), (20, 4096, "base3"),
                                                                  (5, 33, "2bit")]]
    path = tmp_path / "s.tnhd"
    with P.StreamWriter(path) as w:
        for i, (p, d, enc) in enumerate(items):
            w.write(p, d, encoding=enc, model_id=f"m{i}")
        w.write_packet(P.dumps(items[0][0], items[0][1], model_id="again"))
    assert w.count == 5 and w.nbytes == path.stat().st_size
    data = path.read_bytes()
    for source in (path, str(path), data, io.BytesIO(data)):
        got = P.load_stream(source)
        assert [g.meta["model_id"] for g in got] == ["m0", "m1", "m2", "m3", "again"]
        for g, (p, d, enc) in zip(got, items):
            assert g.dim == d and g.encoding == enc and np.array_equal(g.vectors, p)
    assert len(P.load_stream(path, mmap=False)) == 5
    assert P.load_stream(b"") == []
    # one stream per BytesIO writer target
    buf = io.BytesIO()
    with P.StreamWriter(buf) as w:
        w.write(items[0][0], items[0][1])
    assert len(P.load_stream(buf.getvalue())) == 1
    # a truncated stream raises at the damaged packet, after yielding the good ones
    it = P.iter_stream(data[:-3])
    for _ in range(4):
        next(it)
    with pytest.raises(ternhd.PacketError, match="^truncated"):
        next(it)
    with pytest.raises(ternhd.PacketError, match="^truncated"):
        P.load_stream(io.BytesIO(data[:-3]))
    with pytest.raises(ternhd.PacketError):
        P.load_stream(data + b"\x00")
    with pytest.raises(ternhd.PacketError, match="^trailing data"):
        P.loads(data)
    with pytest.raises(ternhd.PacketError):
        P.StreamWriter(io.BytesIO()).write_packet(data[:50])


class _Unseekable(io.RawIOBase):
    def __init__(self, data):
        self._b = io.BytesIO(data)
        self.reads = 0

    def readable(self):
        return True

    def seekable(self):
        return False

    def read(self, n=-1):
        self.reads += 1
        return self._b.read(n)


def test_file_stream_bounds_reads_before_allocating():
    p = np.zeros((1, 1), np.uint8)
    blob = bytearray(P.dumps(p, 4))
    # Declare 2**30 rows: the header is consistent (payload length matches), only the bytes are missing.
    struct.pack_into("<Q", blob, 16, 2**30)
    struct.pack_into("<Q", blob, 56, 2**30)
    _resign(blob)
    with pytest.raises(ternhd.PacketError, match="^truncated"):
        P.loads(bytes(blob))
    with pytest.raises(ternhd.PacketError, match="^truncated"):
        P.load_stream(io.BytesIO(bytes(blob)))  # seekable: compared with the file's size
    src = _Unseekable(bytes(blob))
    with pytest.raises(ternhd.PacketError, match="^truncated"):
        P.load_stream(src)  # unseekable: read in bounded pieces until the data runs out
    assert src.reads == 3  # header, the one byte there is, end of file
    struct.pack_into("<Q", blob, 16, 2**40)
    struct.pack_into("<Q", blob, 56, 2**40)
    src = _Unseekable(bytes(_resign(blob)))
    with pytest.raises(ternhd.PacketError, match="^oversized"):
        P.load_stream(src)  # bounded by max_packet_bytes, nothing read past the header
    assert src.reads == 1
    with pytest.raises(ternhd.PacketError, match="^oversized"):
        P.load_stream(io.BytesIO(P.dumps(np.zeros((100, 100), np.uint8), 400)), max_packet_bytes=1000)


# ----------------------------------------------------------------------------- untrusted input
def _small_packets():
    rng = np.random.default_rng(11)
    p = _rand_packed(rng, 3, 13)
    return [
        P.dumps(p, 13, model_id="teacher", projection="gaussian", seed=1, threshold="std", in_dim=8, note="hi"),
        P.dumps(p, 13, encoding="base3", labels=[1, 2, 3], scales=[0.5, 1, 2]),
        P.dumps(p, 13, checksum="xxh64", kind="knowledge", labels=[0, 1, 0]),
    ]


def test_every_truncation_raises():
    for blob in _small_packets():
        for n in range(len(blob)):
            with pytest.raises(ternhd.PacketError):
                P.loads(blob[:n])


def test_every_bit_flip_raises():
    for blob in _small_packets():
        for i in range(len(blob)):
            for bit in (0, 7):
                bad = bytearray(blob)
                bad[i] ^= 1 << bit
                with pytest.raises(ternhd.PacketError):
                    P.loads(bytes(bad))


def _field_mutations():
    """(offset, struct format, value, message prefix): header fields set to bad values, re-signed."""
    return [
        (0, "<4s", b"XXXX", "magic"), (4, "<H", 2, "version"), (6, "<H", 0x80, "flags"),
        (8, "<I", 10, "header size"), (12, "<I", 0, "dim"), (12, "<I", 2**31, "dim"),
        (16, "<Q", 2**40 + 1, "count"), (24, "<B", 2, "encoding"), (25, "<B", 9, "kind"),
        (26, "<B", 4, "projection"), (27, "<B", 5, "threshold"), (32, "<d", float("nan"), "tau"),
        (32, "<d", -1.0, "tau"), (48, "<H", 300, "model_id"), (50, "<H", 1, "reserved"),
        (52, "<I", 2**21, "meta"), (56, "<Q", 5, "payload length"), (16, "<Q", 4, "payload length"),
    ]


@pytest.mark.parametrize("off,fmt,value,prefix", _field_mutations())
def test_header_fields_are_checked(off, fmt, value, prefix):
    blob = bytearray(_small_packets()[0])
    struct.pack_into(fmt, blob, off, value)
    _resign(blob)
    with pytest.raises(ternhd.PacketError, match=f"^{prefix}"):
        P.loads(bytes(blob))


def _rebuild(model_id: bytes = b"", meta: bytes = b"", payload: bytes = b"\x00", dim: int = 4, count: int = 1,
             encoding: int = 0, tail: bytes = b"", flags: int = 0) -> bytes:
    head = bytearray(P._HEADER.pack(P.MAGIC, 1, flags, 72 + len(model_id) + len(meta), dim, count, encoding, 0, 0, 0,
                                    0, 0.0, 0, len(model_id), 0, len(meta), len(payload), 0))
    return bytes(_resign(head + model_id + meta + payload + tail))


def test_body_sections_are_checked():
    assert P.loads(_rebuild()).count == 1  # the builder makes valid packets
    cases = [
        (_rebuild(model_id=b"\xff\xfe"), "model_id"),
        (_rebuild(meta=b"{not json"), "meta"),
        (_rebuild(meta=b"[1, 2]"), "meta"),
        (_rebuild(meta=b'{"seed": 3}'), "meta"),
        (_rebuild(meta=b'{"encoding": "2bit"}'), "meta"),
        (_rebuild(meta=b"[" * 100000), "meta"),  # too deep for the JSON parser: RecursionError is caught
        (_rebuild(meta=b'{"a": NaN'), "meta"),
        (_rebuild(payload=b"\xc0"), "payload"),  # code 11
        (_rebuild(payload=b"\x01", dim=3), "payload"),  # non-zero padding trit
        (_rebuild(payload=b"\xf3", dim=5, encoding=1, count=1), "payload"),  # base-3 byte >= 243
        (_rebuild(payload=b"\x01", dim=4, encoding=1, count=1), "payload"),  # base-3 padding digit
        (_rebuild(tail=b"\x00\x00\xc0\x7f", flags=4), "scales"),  # NaN scale
    ]
    for blob, prefix in cases:
        with pytest.raises(ternhd.PacketError, match=f"^{prefix}"):
            P.loads(blob)
    assert P.loads(_rebuild(payload=b"\xc0"), validate=False).vectors.tolist() == [[0xC0]]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzz_mutations_only_raise_packet_error(data):
    """CI-sized fuzz: random mutations (then re-signed half the time, to reach the field checks)."""
    blob = bytearray(data.draw(st.sampled_from(_small_packets())))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        i = data.draw(st.integers(0, max(0, len(blob) - 1)))
        if op == "flip" and blob:
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and blob:
            blob[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del blob[i:i + data.draw(st.integers(1, 8))]
        elif op == "truncate":
            del blob[i:]
    if data.draw(st.booleans()) and len(blob) >= 72:
        _resign(blob)
    try:
        pkt = P.loads(bytes(blob))
    except ternhd.PacketError:
        return
    assert pkt.vectors.shape == (pkt.count, (pkt.dim + 3) // 4)  # whatever parses is consistent


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(raw):
    with pytest.raises(ternhd.PacketError):
        P.loads(raw)
    with pytest.raises(ternhd.PacketError):
        P.loads(P.MAGIC + raw)


def test_dumps_argument_errors():
    p = np.zeros((2, 2), np.uint8)
    bad = [
        (dict(dim=0), ValueError, "dim"), (dict(dim=7.5), TypeError, "dim"),
        (dict(encoding="zip"), ValueError, "encoding"),
        (dict(checksum="md5"), ValueError, "checksum"), (dict(kind="x"), ValueError, "kind"),
        (dict(projection="fourier"), ValueError, "projection"), (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"), (dict(threshold="median"), ValueError, "threshold"),
        (dict(threshold=-1.0), ValueError, "threshold"), (dict(threshold="std", tau=float("inf")), ValueError, "tau"),
        (dict(sparsity=1.5), ValueError, "sparsity"), (dict(sparsity=0.5, threshold=0.1), ValueError, "sparsity"),
        (dict(model_id="x" * 300), ValueError, "model_id"), (dict(model_id=3), TypeError, "model_id"),
        (dict(labels=[1]), ValueError, "labels"), (dict(labels=[0.5, 1.5]), TypeError, "labels"),
        (dict(scales=[1.0, float("nan")]), ValueError, "scales"), (dict(scales=[1.0, 1e300]), ValueError, "scales"),
        (dict(labels=np.array([1, 2**63], np.uint64)), ValueError, "labels"), (dict(in_dim=-1), ValueError, "in_dim"),
        (dict(tau=0.3, seed=1, blob=object()), ValueError, "extra metadata"),
        (dict(huge="x" * (P.MAX_META + 1)), ValueError, "extra metadata"),
    ]
    for kw, exc, prefix in bad:
        kw = dict(kw)
        dim = kw.pop("dim", 8)
        with pytest.raises(exc, match=f"^{prefix}"):
            P.dumps(p, dim, **kw)
    with pytest.raises(ValueError, match="^vectors: expected shape"):
        P.dumps(p, 20)
    with pytest.raises(TypeError, match="^vectors:"):
        P.dumps(np.zeros((2, 2), np.int8), 8)
    with pytest.raises(ValueError, match="^vectors: row 1"):
        P.dumps(np.array([[0, 0], [0, 0xC0]], np.uint8), 8)
    with pytest.raises(ValueError, match="^vectors: row 0"):
        P.dumps(np.array([[0, 1]], np.uint8), 7)  # non-zero padding trit
    with pytest.raises(TypeError, match="^data:"):
        P.loads(12)
    with pytest.raises(TypeError, match="^data:"):
        P.loads(np.zeros((2, 2), np.uint8))


def test_import_ternhd_does_not_import_torch():
    code = "import sys, ternhd; ternhd.packet; ternhd.distributed; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- knowledge packets
def _clusters(seed=0, n_per=150, classes=5, d=48, noise=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 1.2
    y = np.repeat(np.arange(classes), n_per)
    x = centers[y] + noise * rng.standard_normal((y.size, d))
    perm = rng.permutation(y.size)
    return x[perm].astype(np.float32), y[perm]


@pytest.mark.parametrize("encoding", P.ENCODINGS)
def test_knowledge_prototypes_teacher_to_student(encoding):
    x, y = _clusters()
    xtr, ytr, xte, yte = x[:500], y[:500], x[500:], y[500:]
    names = ["ant", "bee", "cat", "dog", "eel"]
    teacher = ternhd.HDCEncoder(48, dim=2048, tau=0.3, seed=42)
    blob = K.teach(teacher, xtr, ytr, classes=names, encoding=encoding, model_id="teacher-v1")
    assert len(blob) < 5 * 512 + 400  # 5 prototypes of 2048 trits plus header and metadata
    # the teacher's own nearest-prototype accuracy
    protos = K.class_prototypes(teacher.encode(xtr), ytr, 2048, 5)
    _, idx = ternhd.topk(teacher.encode(xte), protos, 1)
    teacher_acc = float(np.mean(np.asarray(idx)[:, 0] == yte))
    # the student knows nothing but the packet
    student = K.KnowledgeClassifier.from_packet(blob)
    assert student.classes == names and student.mode == "prototypes"
    enc = student.encoder
    assert (enc.in_dim, enc.dim, enc.seed, enc.tau, enc.threshold, enc.projection) == \
        (48, 2048, 42, 0.3, "std", "gaussian")
    assert np.array_equal(enc.projection_matrix(), teacher.projection_matrix())
    acc = student.score(xte, yte)
    assert acc == teacher_acc
    assert acc > 0.9
    assert student.predict(xte[:3]) == [names[i] for i in student.predict_ids(xte[:3])]


def test_knowledge_examples_knn():
    x, y = _clusters(seed=1)
    enc = ternhd.HDCEncoder(48, dim=1024, sparsity=0.7, seed=7)
    blob = K.teach(enc, x[:400], y[:400], mode="examples", k=5, encoding="base3")
    pkt = P.loads(blob)
    assert pkt.count == 400 and pkt.kind == "knowledge" and pkt.meta["sparsity"] == 0.7
    student = K.KnowledgeClassifier.from_packet(pkt)
    assert student.encoder.sparsity == 0.7 and student.k == 5
    # k-NN by hand with the reference similarity
    q = enc.encode(x[400:])
    sims = reference.cosine(q, np.asarray(pkt.vectors))
    order = np.argsort(-sims.astype(np.float64), axis=1, kind="stable")[:, :5]
    votes = y[:400][order]
    pred = student.predict_packed(q)
    for v, pr in zip(votes, pred):
        counts = np.bincount(v, minlength=5)
        assert counts[pr] == counts.max()
    assert student.score(x[400:], y[400:]) > 0.9


def test_knowledge_packet_validation():
    enc = ternhd.HDCEncoder(8, dim=16, seed=1)
    v = np.zeros((2, 4), np.uint8)
    good = dict(kind="knowledge", labels=[0, 1], projection="gaussian", in_dim=8, threshold="std", seed=1)
    assert K.KnowledgeClassifier.from_packet(
        P.dumps(v, 16, knowledge=dict(mode="prototypes", k=1, classes=["a", "b"]), **good)).classes == ["a", "b"]
    bad = [
        (P.dumps(v, 16, **dict(good, kind="vectors"), knowledge=dict(mode="prototypes", classes=[0, 1])), "kind"),
        (P.dumps(v, 16, **good), "meta"),
        (P.dumps(v, 16, **good, knowledge=dict(mode="svm", classes=[0, 1])), "knowledge.mode"),
        (P.dumps(v, 16, **good, knowledge=dict(mode="examples", k=0, classes=[0, 1])), "knowledge.k"),
        (P.dumps(v, 16, **good, knowledge=dict(mode="examples", k=True, classes=[0, 1])), "knowledge.k"),
        (P.dumps(v, 16, **good, knowledge=dict(mode="prototypes", classes=[0])), "labels"),
        (P.dumps(v, 16, **good, knowledge=dict(mode="prototypes", classes=[])), "knowledge.classes"),
        (P.dumps(v, 16, **dict(good, labels=None), knowledge=dict(mode="prototypes", classes=[0, 1])), "labels"),
        (P.dumps(v, 16, **dict(good, in_dim=0), knowledge=dict(mode="prototypes", classes=[0, 1])), "meta"),
    ]
    for blob, prefix in bad:
        with pytest.raises(ternhd.PacketError, match=f"^{prefix}"):
            K.KnowledgeClassifier.from_packet(blob)
    huge = P.dumps(v, 16, **dict(good, in_dim=2**32 - 1), knowledge=dict(mode="prototypes", classes=[0, 1]))
    with pytest.raises(ternhd.PacketError, match="^in_dim"):
        K.KnowledgeClassifier.from_packet(huge)  # would be a 256 GiB projection matrix
    with pytest.raises(ValueError, match="^mode"):
        K.knowledge_dumps(enc, v, [0, 1], mode="svm")
    with pytest.raises(ValueError, match="^labels"):
        K.knowledge_dumps(enc, v, [0, 5], classes=["a", "b"])
    with pytest.raises(ValueError, match="^labels"):
        K.class_prototypes(v, np.array([0, 3]), 16, 2)


def test_class_prototypes_match_bundling_reference():
    rng = np.random.default_rng(9)
    t = rng.integers(-1, 2, (40, 37)).astype(np.int8)
    lab = rng.integers(0, 4, 40)
    protos = K.class_prototypes(ternhd.pack_ternary(t), lab, 37, 5)
    sums = np.stack([t[lab == c].sum(0) for c in range(5)])
    assert np.array_equal(ternhd.unpack_ternary(protos, 37), np.sign(sums).astype(np.int8))
    assert not ternhd.unpack_ternary(protos, 37)[4].any()  # empty class -> zero vector
