"""Ternary-compressed DDP training with ternhd.distributed, against the uncompressed baseline.

    torchrun --nproc_per_node 2 examples/ddp_ternary.py                 # gloo on CPU
    torchrun --nproc_per_node 4 examples/ddp_ternary.py --hooks two_phase
    torchrun --nproc_per_node 1 examples/ddp_ternary.py --backend nccl  # one GPU, NCCL

Trains the same small MLP on a fixed synthetic task once per seed and hook — DDP's plain
all-reduce (``ternhd.distributed.allreduce_hook``, which only counts bytes),
``ternhd.distributed.ternary_hook`` (all-gather of 2-bit trits + one float32 scale per 256 values,
error feedback) and ``ternhd.distributed.two_phase_hook`` (the same codes through all-to-all +
all-gather: bytes per rank constant in the world size) — and prints the test accuracy of each and
the bytes each rank sends to the other ranks per optimizer step. The two-phase run is checkpointed
half-way (model, optimizer and the hook's error-feedback state, per rank) and resumed from it.
Finally it ships the trained model's parameter delta as a ``ternhd.packet`` (DeltaCompressor).
"""
from __future__ import annotations

import argparse
import datetime
import io
import math
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import ternhd
from ternhd import distributed as td


def synthetic_task(seed: int, n_train: int = 4096, n_test: int = 8192, d: int = 16, classes: int = 4,
                   teacher_hidden: int = 16):
    """Labels are the argmax of a random two-layer teacher network (the task of tests/test_distributed.py)."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(d, teacher_hidden, generator=g)
    w2 = torch.randn(teacher_hidden, classes, generator=g)
    x = torch.randn(n_train + n_test, d, generator=g)
    y = (torch.tanh(x @ w1 / math.sqrt(d)) @ w2).argmax(1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


HOOKS = {"dense": td.allreduce_hook, "ternary": td.ternary_hook, "two_phase": td.two_phase_hook}


def train(mode: str, seed: int, args, device: torch.device):
    rank, world = dist.get_rank(), dist.get_world_size()
    xtr, ytr, xte, yte = (t.to(device) for t in synthetic_task(seed))
    torch.manual_seed(seed + 1)
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], args.hidden), torch.nn.ReLU(),
                              torch.nn.Linear(args.hidden, args.hidden), torch.nn.ReLU(),
                              torch.nn.Linear(args.hidden, int(ytr.max()) + 1)).to(device)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    state = td.TernaryState(chunk=args.chunk)
    model.register_comm_hook(state, HOOKS[mode])
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    xs, ys = xtr[rank::world], ytr[rank::world]
    steps = args.epochs * (xs.shape[0] // args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    g = torch.Generator().manual_seed(seed + 2)
    for epoch in range(args.epochs):
        if mode == "two_phase" and epoch == args.epochs // 2:
            # Checkpoint and resume: the error feedback is per rank, so each rank saves its own.
            ckpt = dict(model=net.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                        comm=state.state_dict())
            buf = io.BytesIO()
            torch.save(ckpt, buf)
            buf.seek(0)
            ckpt = torch.load(buf, weights_only=True)
            net.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
            sched.load_state_dict(ckpt["sched"])
            state.load_state_dict(ckpt["comm"])
        perm = torch.randperm(xs.shape[0], generator=g).to(device)
        for i in range(0, xs.shape[0] - args.batch + 1, args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        acc = float((net(xte).argmax(1) == yte).float().mean())
    b = state.bytes_per_step()
    return acc, b["sent"], b["dense"], state.steps, net, init


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--chunk", type=int, default=td.DEFAULT_CHUNK)
    ap.add_argument("--hooks", nargs="+", choices=["ternary", "two_phase"], default=["ternary", "two_phase"])
    args = ap.parse_args()

    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "gloo":
        torch.set_num_threads(1)
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        print(f"ternhd {ternhd.__version__} | torch {torch.__version__} | backend {backend} x{world} | "
              f"{args.epochs} epochs, chunk {args.chunk}", flush=True)
        print(f"{'seed':>4} {'hook':>10} {'dense acc':>10} {'hook acc':>9} {'diff':>8} {'dense B/step':>13} "
              f"{'hook B/step':>12} {'ratio':>7} {'time':>7}", flush=True)
    diffs, ratios = [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        dacc, dsent, _, dsteps, _, _ = train("dense", seed, args, device)
        for hook in args.hooks:
            tacc, tsent, tdense, tsteps, net, init = train(hook, seed, args, device)
            assert dsteps == tsteps
            diffs.append(tacc - dacc)
            ratios.append(dsent / tsent if tsent else float("inf"))
            if rank == 0:
                print(f"{seed:>4} {hook:>10} {dacc:>10.4f} {tacc:>9.4f} {tacc - dacc:>+8.4f} {dsent:>13.0f} "
                      f"{tsent:>12.0f} {ratios[-1]:>6.2f}x {time.perf_counter() - t0:>6.1f}s", flush=True)
    if rank == 0:
        mean = sum(diffs) / len(diffs)
        sd = (sum((d - mean) ** 2 for d in diffs) / max(1, len(diffs) - 1)) ** 0.5
        print(f"hook - dense accuracy: mean {mean:+.4f} (std {sd:.4f}, worst {min(diffs):+.4f}); "
              f"bytes per rank per step at least {min(ratios):.2f}x fewer", flush=True)
        # The trained model's change since initialisation, shipped as one delta packet.
        deltas = td.parameter_delta({k: v.cpu() for k, v in net.state_dict().items()},
                                    {k: v.cpu() for k, v in init.items()})
        blob = td.DeltaCompressor(encoding="base3").dumps(deltas, model_id="ddp_ternary")
        raw = sum(v.numel() * 4 for v in deltas.values())
        got = td.delta_loads(blob)
        err = math.sqrt(sum(float((got[k] - deltas[k]).pow(2).sum()) for k in deltas)
                        / sum(float(deltas[k].pow(2).sum()) for k in deltas))
        print(f"parameter delta packet: {raw} B float32 -> {len(blob)} B ({raw / len(blob):.1f}x), "
              f"relative L2 error {err:.3f}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    # torch 2.13's gloo occasionally aborts during interpreter finalization after a clean shutdown
    # ("terminate called without an active exception", also without any comm hook): skip it.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
