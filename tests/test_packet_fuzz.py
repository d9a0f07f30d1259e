"""Fuzzes the packet parser with mutations and truncations of valid packets and reports the counts.

    python tests/test_packet_fuzz.py                 # 200,000 cases (at least 100,000 is the bar)
    python tests/test_packet_fuzz.py -n 1000000 --seed 3

Every case must either parse into a consistent packet or raise ``ternhd.PacketError``; anything
else (another exception, a crash of the process) is a failure and the script exits with status 1.
Half of the mutated packets get their CRC32 / xxh64 checksum recomputed, so the mutation reaches
the field checks behind the checksum instead of stopping at it. Peak memory is reported to show
that lying length fields never turn into large allocations.
"""
from __future__ import annotations

import argparse
import collections
import io
import random
import resource
import struct
import sys
import time
import zlib

import numpy as np

import ternhd
from ternhd import knowledge as K
from ternhd import packet as P

try:
    import xxhash
except ImportError:  # pragma: no cover
    xxhash = None
try:
    import torch  # noqa: F401

    from ternhd import distributed as td
except ImportError:  # pragma: no cover
    td = None


def seeds() -> list:
    rng = np.random.default_rng(0)

    def rp(rows, dim):
        return ternhd.pack_ternary(rng.integers(-1, 2, (rows, dim)).astype(np.int8))

    out = [
        P.dumps(rp(3, 13), 13, model_id="teacher", projection="gaussian", seed=7, threshold="std", in_dim=8, note="x"),
        P.dumps(rp(4, 40), 40, encoding="base3", labels=[1, 2, 3, 4], scales=[0.5, 1, 2, 3]),
        P.dumps(rp(2, 7), 7, kind="knowledge", labels=[0, 1], projection="gaussian", in_dim=4, threshold=0.2,
                knowledge=dict(mode="prototypes", k=1, classes=["a", "b"])),
        P.dumps(rp(0, 9), 9, sparsity=0.7),
        P.dumps(rp(1, 100), 100, encoding="base3", model_id="é" * 10),
    ]
    if xxhash is not None:
        out.append(P.dumps(rp(2, 21), 21, checksum="xxh64", labels=[5, 6]))
    if td is not None:
        import torch

        out.append(td.DeltaCompressor(chunk=16).dumps({"w": torch.randn(5, 7), "b": torch.randn(3)}))
    return out


# Header fields: (offset, struct format) and interesting values for each.
FIELDS = [(0, "<4s"), (4, "<H"), (6, "<H"), (8, "<I"), (12, "<I"), (16, "<Q"), (24, "<B"), (25, "<B"), (26, "<B"),
          (27, "<B"), (28, "<I"), (32, "<d"), (40, "<Q"), (48, "<H"), (50, "<H"), (52, "<I"), (56, "<Q")]
EDGE = {"<B": [0, 1, 2, 3, 4, 5, 255], "<H": [0, 1, 2, 255, 256, 257, 65535],
        "<I": [0, 1, 2, 71, 72, 73, 2**20, 2**20 + 1, 2**31 - 1, 2**31, 2**32 - 1],
        "<Q": [0, 1, 2, 3, 2**31, 2**32, 2**40, 2**40 + 1, 2**63, 2**64 - 1],
        "<d": [0.0, -0.0, 1.0, 1.5, -1.0, float("nan"), float("inf"), -float("inf"), 1e308, 5e-324],
        "<4s": [b"TNHD", b"TNHE", b"\x00\x00\x00\x00", b"PK\x03\x04"]}


def resign(buf: bytearray) -> None:
    if len(buf) < 72:
        return
    mv = memoryview(buf)
    flags = struct.unpack_from("<H", buf, 6)[0]
    if flags & 1 and xxhash is not None:
        h = xxhash.xxh64()
        h.update(mv[:64])
        h.update(mv[72:])
        c = h.intdigest()
    else:
        c = zlib.crc32(mv[72:], zlib.crc32(mv[:64]))
    struct.pack_into("<Q", buf, 64, c)


def mutate(rnd: random.Random, blob: bytes) -> tuple:
    buf = bytearray(blob)
    kind = rnd.choice(["truncate", "flip", "set", "insert", "delete", "field", "field", "multi", "append"])
    if kind == "truncate":
        del buf[rnd.randrange(len(buf)):]
    elif kind == "flip":
        buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
    elif kind == "set":
        buf[rnd.randrange(len(buf))] = rnd.randrange(256)
    elif kind == "insert":
        i = rnd.randrange(len(buf) + 1)
        buf[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    elif kind == "delete":
        i = rnd.randrange(len(buf))
        del buf[i:i + rnd.randint(1, 16)]
    elif kind == "append":
        buf += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    elif kind == "field":
        off, fmt = rnd.choice(FIELDS)
        v = rnd.choice(EDGE[fmt])
        struct.pack_into(fmt, buf, off, v)
    else:
        for _ in range(rnd.randint(2, 6)):
            if buf:
                buf[rnd.randrange(len(buf))] = rnd.randrange(256)
    signed = rnd.random() < 0.5
    if signed:
        resign(buf)
    return kind, signed, bytes(buf)


def test_fuzzed_packets_parse_or_raise_packet_error():
    """Under pytest: 20,000 cases (the script's default is 200,000)."""
    assert main(["-n", "20000", "--seed", "1"]) == 0


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200_000, help="number of cases (default 200,000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rnd = random.Random(args.seed)
    base = seeds()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = collections.Counter()
    by_kind = collections.Counter()
    reasons = collections.Counter()
    failures = []
    t0 = time.perf_counter()
    for i in range(args.n):
        blob = base[i % len(base)]
        kind, signed, data = mutate(rnd, blob)
        by_kind[kind] += 1
        via_stream = i % 10 == 0  # every tenth case goes through the file-object stream reader
        try:
            if via_stream:
                pkts = P.load_stream(io.BytesIO(data))
                for p in pkts:
                    assert p.vectors.shape == (p.count, (p.dim + 3) // 4)
            else:
                p = P.loads(data)
                assert p.vectors.shape == (p.count, (p.dim + 3) // 4)
                try:  # the consumers of the payload validate their metadata too
                    if p.kind == "knowledge":
                        K.KnowledgeClassifier.from_packet(p)
                    elif p.kind == "delta" and td is not None:
                        td.delta_loads(p)
                except ternhd.PacketError:
                    outcomes["parsed, consumer rejected metadata"] += 1
            outcomes["parsed (valid after mutation)"] += 1
        except ternhd.PacketError as e:
            outcomes["rejected: PacketError"] += 1
            reasons[str(e).split(":")[0]] += 1
        except Exception as e:  # noqa: BLE001 - this is what the fuzzer looks for
            outcomes["FAILED: other exception"] += 1
            if len(failures) < 10:
                failures.append((kind, signed, type(e).__name__, str(e)[:200], data[:96].hex()))
    dt = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"ternhd {ternhd.__version__}: {args.n:,} cases from {len(base)} seed packets in {dt:.1f} s "
          f"({args.n / dt:,.0f}/s), seed {args.seed}")
    print("mutations: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_kind.items())))
    for k, v in sorted(outcomes.items()):
        print(f"  {k:<34} {v:>9,}")
    print("rejections by field: " + ", ".join(f"{k} {v:,}" for k, v in reasons.most_common()))
    print(f"peak RSS: {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB after")
    for f in failures:
        print("FAILURE:", f)
    return 1 if outcomes["FAILED: other exception"] else 0


if __name__ == "__main__":
    sys.exit(main())
