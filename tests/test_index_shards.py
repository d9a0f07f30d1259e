"""ternhd.sharded_search: two gloo processes on loopback, each holding half of the database, give
exactly the single-process Index.search result (ties included)."""
import datetime
import os
import socket
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as tmp  # noqa: E402

import ternhd  # noqa: E402
from ternhd.similarity import Index, sharded_search  # noqa: E402

N, DIM, K = 301, 96, 7


def _data():
    rng = np.random.default_rng(21)
    t = rng.integers(-1, 2, (N, DIM)).astype(np.int8)
    t[rng.random((N, DIM)) < 0.4] = 0
    p = ternhd.pack_ternary(t)
    p[200:204] = p[10]  # exact ties across the shard boundary
    qf = rng.standard_normal((3, DIM)).astype(np.float32)
    return p, np.arange(N, dtype=np.int64) * 3 + 7, p[[10, 0, 150, 299]], qf


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=30))
    try:
        p, ids, q, qf = _data()
        cut = [0, 151, N]
        shard = Index(p[cut[rank]:cut[rank + 1]], ids=ids[cut[rank]:cut[rank + 1]], dim=DIM)
        res = {}
        for name, queries, metric in (("cos", q, "cosine"), ("ham", q, "hamming"), ("dot", qf, "dot"),
                                      ("one", q[0], "dot")):
            res[name] = sharded_search(shard, queries if rank == 0 else None, K, metric)
        try:
            sharded_search(shard, q if rank == 0 else None, N + 1)
            res["err"] = None
        except ValueError as exc:
            res["err"] = str(exc)
        if rank == 0:
            np.save(out, np.array([res], dtype=object), allow_pickle=True)
        else:
            np.save(out + f".{rank}", np.array([res], dtype=object), allow_pickle=True)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # see tests/test_distributed.py: gloo may abort during interpreter finalization


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sharded_search_two_gloo_processes(tmp_path):
    out = str(tmp_path / "res.npy")
    ctx = tmp.start_processes(_worker, args=(2, _free_port(), out), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 90
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError("spawned processes did not finish within 90 s")
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    res = np.load(out, allow_pickle=True)[0]
    res1 = np.load(out + ".1.npy", allow_pickle=True)[0]
    p, ids, q, qf = _data()
    whole = Index(p, ids=ids, dim=DIM)
    for name, queries, metric in (("cos", q, "cosine"), ("ham", q, "hamming"), ("dot", qf, "dot"),
                                  ("one", q[0], "dot")):
        s_ref, i_ref = whole.search(queries, K, metric)
        for r in (res, res1):
            np.testing.assert_array_equal(r[name][0], s_ref)
            np.testing.assert_array_equal(r[name][1], i_ref)
    assert "exceeds the total size 301" in res["err"] and res1["err"] == res["err"]
