"""Bytes per rank per step and final accuracy of DDP gradient-sync hooks on gloo, 2 / 4 / 8 CPU processes.

    python benchmarks/sync_bytes.py                      # the docs/SYNC.md run (a few minutes on 2 cores)
    python benchmarks/sync_bytes.py --worlds 2 --seeds 0 --steps 50 --out /tmp/s.json --png ''  # smoke

For every world size the same W processes train the same MLP on the same synthetic task (labels of a
random teacher network; the task of tests/test_distributed.py) with the same seeds and the same
global batch, once per sync method:

* ``dense``      float32 all-reduce (``ternhd.distributed.allreduce_hook``: DDP's default averaging)
* ``ternary``    ``ternhd.distributed.ternary_hook`` (all-gather of every rank's ternary payload)
* ``two_phase``  ``ternhd.distributed.two_phase_hook`` (all-to-all + all-gather of ternary chunks)
* ``powersgd_r2`` / ``powersgd_r4``  torch's ``powerSGD_hook`` (rank 2 / 4, error feedback, warm
  start, ``start_powerSGD_iter=2``, default ``min_compression_rate=2``)

How bytes are counted: inside each worker the torch.distributed collectives that the hooks call
(``all_reduce``, ``all_gather_into_tensor`` / ``all_gather_single``, ``all_to_all_single``) are
wrapped; each call adds the bytes this rank sends to and receives from the *other* ranks, from the
sizes of the tensors passed: all-reduce of N elements as the bandwidth-optimal ring (2 (N - seg_r)
elements each way, seg_r = this rank's 1/W segment), all-gather of b bytes per rank as (W - 1) b each
way, all-to-all of b bytes as (W - 1) b / W each way. The per-step count is taken between optimizer
steps; the table reports the median over steps (PowerSGD's first step and DDP's first, pre-rebuild
step are dense or differently bucketed), the JSON also the mean and ternhd's own state counters
(which must agree with the wrapper for the ternhd hooks).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("dense", "ternary", "two_phase", "powersgd_r2", "powersgd_r4")


def synthetic_task(seed: int):
    """The task of examples/ddp_ternary.py (and tests/test_distributed.py), with 8,192 training rows."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from ddp_ternary import synthetic_task as task

    return task(seed, n_train=8192)


class _Counter:
    """Wraps torch.distributed collectives and counts wire bytes per rank (see the module doc)."""

    def __init__(self, dist):
        self.dist = dist
        self.sent = self.received = 0
        self.calls = 0
        for name, kind in (("all_reduce", "allreduce"), ("all_gather_into_tensor", "allgather"),
                           ("all_gather_single", "allgather"), ("all_to_all_single", "alltoall")):
            fn = getattr(dist, name, None)
            if fn is not None:
                setattr(dist, name, self._wrap(fn, kind))

    def _wrap(self, fn, kind):
        dist = self.dist

        def wrapped(*args, **kwargs):
            group = kwargs.get("group")
            world, rank = dist.get_world_size(group), dist.get_rank(group)
            if kind == "allreduce":
                t = args[0] if args else kwargs["tensor"]
                n = t.numel()
                seg = n // world + (1 if rank < n % world else 0)
                b = 2 * (n - seg) * t.element_size()
            elif kind == "allgather":
                t = args[1] if len(args) > 1 else kwargs["input_tensor"]
                b = (world - 1) * t.numel() * t.element_size()
            else:
                t = args[1] if len(args) > 1 else kwargs["input"]
                b = (world - 1) * (t.numel() * t.element_size() // world)
            self.sent += b
            self.received += b
            self.calls += 1
            return fn(*args, **kwargs)

        return wrapped


def train(method: str, seed: int, rank: int, world: int, cfg: dict, counter: _Counter) -> dict:
    import torch
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ternhd import distributed as td

    xtr, ytr, xte, yte = synthetic_task(seed)
    torch.manual_seed(seed + 1)
    h = cfg["hidden"]
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], h), torch.nn.ReLU(), torch.nn.Linear(h, h),
                              torch.nn.ReLU(), torch.nn.Linear(h, int(ytr.max()) + 1))
    model = DDP(net)
    state = None
    if method.startswith("powersgd"):
        model.register_comm_hook(psgd.PowerSGDState(process_group=None, matrix_approximation_rank=int(method[-1]),
                                                    start_powerSGD_iter=2, random_seed=seed), psgd.powerSGD_hook)
    else:
        state = td.TernaryState(chunk=cfg["chunk"])
        hook = {"dense": td.allreduce_hook, "ternary": td.ternary_hook, "two_phase": td.two_phase_hook}[method]
        model.register_comm_hook(state, hook)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    steps = cfg["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    bs = cfg["global_batch"] // world
    g = torch.Generator().manual_seed(seed + 2)
    per_step = []
    t0 = time.perf_counter()
    perm = torch.randperm(xtr.shape[0], generator=g)
    pos = 0
    for _ in range(steps):
        if pos + cfg["global_batch"] > xtr.shape[0]:
            perm, pos = torch.randperm(xtr.shape[0], generator=g), 0
        idx = perm[pos:pos + cfg["global_batch"]][rank * bs:(rank + 1) * bs]  # this rank's share of the global batch
        pos += cfg["global_batch"]
        s0, r0 = counter.sent, counter.received
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
        opt.step()
        sched.step()
        per_step.append((counter.sent - s0, counter.received - r0))
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        acc = float((net(xte).argmax(1) == yte).float().mean())
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    replicas = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(replicas, flat)  # outside the counted steps
    out = dict(
        method=method, seed=seed, rank=rank, acc=acc, time_s=elapsed, steps=steps,
        sent_median=statistics.median(s for s, _ in per_step),
        received_median=statistics.median(r for _, r in per_step),
        sent_mean=sum(s for s, _ in per_step) / steps, received_mean=sum(r for _, r in per_step) / steps,
        replicas_equal=all(bool(torch.equal(flat, r)) for r in replicas), params=int(flat.numel()),
    )
    if state is not None:
        b = state.bytes_per_step()
        out.update(state_sent_per_step=b["sent"], state_received_per_step=b["received"],
                   state_dense_per_step=b["dense"])
    return out


def _worker(rank: int, world: int, port: int, cfg: dict, out_path: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=300))
    counter = _Counter(dist)
    rows = []
    for seed in cfg["seeds"]:
        for method in cfg["methods"]:
            rows.append(train(method, seed, rank, world, cfg, counter))
            if rank == 0:
                r = rows[-1]
                print(f"  W={world} seed={seed} {method:<12} acc {r['acc']:.4f} {r['sent_median']:>9.0f} B/step "
                      f"{r['time_s']:.1f} s", flush=True)
    everyone = [None] * world
    dist.all_gather_object(everyone, rows)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump([r for rs in everyone for r in rs], f)
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # torch 2.13's gloo can abort during interpreter finalization after a clean shutdown


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarize(rows: list, worlds: list, methods: list) -> list:
    table = []
    for w in worlds:
        dense = [r for r in rows if r["world"] == w and r["method"] == "dense"]
        dense_acc = statistics.mean(r["acc"] for r in dense if r["rank"] == 0)
        dense_bytes = statistics.mean(r["sent_median"] for r in dense)
        for m in methods:
            rs = [r for r in rows if r["world"] == w and r["method"] == m]
            r0 = [r for r in rs if r["rank"] == 0]
            sent = statistics.mean(r["sent_median"] for r in rs)  # mean over ranks and seeds
            received = statistics.mean(r["received_median"] for r in rs)
            accs = [r["acc"] for r in r0]
            table.append(dict(
                world=w, method=m, bytes_sent=sent, bytes_received=received,
                bytes_sent_max_rank=max(r["sent_median"] for r in rs), ratio_vs_dense=dense_bytes / sent,
                acc_mean=statistics.mean(accs), acc_per_seed=accs,
                acc_minus_dense_points=100 * (statistics.mean(accs) - dense_acc),
                replicas_equal=all(r["replicas_equal"] for r in rs), time_s=statistics.mean(r["time_s"] for r in r0),
            ))
    return table


def plot(table: list, worlds: list, methods: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for m in methods:
        xs = [t["world"] for t in table if t["method"] == m]
        a.plot(xs, [t["bytes_sent"] for t in table if t["method"] == m], "o-", label=m)
        b.plot(xs, [t["acc_minus_dense_points"] for t in table if t["method"] == m], "o-", label=m)
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xticks(worlds, [str(w) for w in worlds])
    a.set_xlabel("ranks (gloo, CPU processes)")
    a.set_ylabel("bytes sent per rank per step (= received)")
    a.set_title("Wire bytes per rank per step")
    b.axhline(0, color="k", lw=0.8)
    b.axhspan(-0.5, 0.5, color="g", alpha=0.1, label="within 0.5 points")
    b.set_xscale("log", base=2)
    b.set_xticks(worlds, [str(w) for w in worlds])
    b.set_xlabel("ranks (gloo, CPU processes)")
    b.set_ylabel("test accuracy - dense (points)")
    b.set_title("Final accuracy against float32 all-reduce")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--global-batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per world size before the workers are killed")
    ap.add_argument("--out", default="docs/results/sync_bytes.json")
    ap.add_argument("--png", default="docs/results/sync_bytes.png")
    args = ap.parse_args()
    import tempfile

    import torch
    import torch.multiprocessing as tmp

    import ternhd

    cfg = dict(seeds=args.seeds, methods=args.methods, steps=args.steps, global_batch=args.global_batch,
               hidden=args.hidden, lr=args.lr, chunk=args.chunk)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = ""
    meta = dict(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command="python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]),
        machine=platform.platform(), processor=platform.processor() or platform.machine(), nproc=os.cpu_count(),
        loadavg_start=os.getloadavg(), torch=torch.__version__, ternhd=ternhd.__version__, commit=commit,
        backend="gloo", counting=__doc__.split("How bytes are counted: ")[1].split("\n\n")[0].replace("\n", " "),
    )
    print(f"{meta['date']} | {meta['machine']} | nproc {meta['nproc']} | load {meta['loadavg_start']} | "
          f"torch {meta['torch']}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmpd:
        for w in args.worlds:
            t0 = time.monotonic()
            path = os.path.join(tmpd, f"w{w}.json")
            ctx = tmp.start_processes(_worker, args=(w, _free_port(), cfg, path), nprocs=w, join=False,
                                      start_method="spawn")
            try:
                while not ctx.join(timeout=1.0):
                    if time.monotonic() - t0 > args.timeout:
                        raise TimeoutError(f"world {w}: not done within {args.timeout} s")
            finally:
                for p in ctx.processes:
                    if p.is_alive():
                        p.kill()
            with open(path) as f:
                for r in json.load(f):
                    rows.append(dict(r, world=w))
            print(f"world {w}: {time.monotonic() - t0:.0f} s, load {os.getloadavg()}", flush=True)
    meta["loadavg_end"] = os.getloadavg()
    table = summarize(rows, args.worlds, args.methods)
    two = {t["world"]: t for t in table if t["method"] == "two_phase"}
    targets = {}
    if two and "dense" in args.methods:
        lo, hi = min(two), max(two)
        dense_b = {t["world"]: t["bytes_sent"] for t in table if t["method"] == "dense"}
        targets = dict(
            two_phase_bytes_growth=dict(worlds=[lo, hi], ratio=two[hi]["bytes_sent"] / two[lo]["bytes_sent"],
                                        target=1.3),
            dense_bytes_growth=dict(worlds=[lo, hi], ratio=dense_b[hi] / dense_b[lo]),
            two_phase_min_ratio_vs_dense=dict(value=min(t["ratio_vs_dense"] for t in two.values()), target=12.0),
            two_phase_worst_acc_minus_dense_points=dict(value=min(t["acc_minus_dense_points"] for t in two.values()),
                                                        target=-0.5),
        )
    print(f"\n| ranks | method | bytes/rank/step (sent = received) | vs float32 | "
          f"accuracy (mean of {len(args.seeds)} seeds) | - dense (points) |\n|---|---|---|---|---|---|")
    for t in table:
        print(f"| {t['world']} | {t['method']} | {t['bytes_sent']:,.0f} | {t['ratio_vs_dense']:.1f}x | "
              f"{100 * t['acc_mean']:.2f} | {t['acc_minus_dense_points']:+.2f} |")
    print(json.dumps(targets, indent=1))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(dict(meta=meta, config=cfg, targets=targets, table=table, rows=rows), f, indent=1)
    if args.png:
        plot(table, args.worlds, args.methods, args.png)


if __name__ == "__main__":
    main()
