"""Training speed: one-model eager baseline against scorew2's batched trainer (model-steps/s).

Baseline (what the authors' notebook does, per step): a plain nn.Module (nn.Linear, nn.Embedding),
the weighted DSM loss on a batch of 128, autograd, clip_grad_norm_(1.0), torch.optim.AdamW
(not fused).  Candidates, timed in the same run, interleaved, medians of repeats:

- "kernel M": ScoreNet.dsm_loss_and_grad (hand-written backward) + per-model norm clipping +
  fused AdamW on the single (M, P) parameter (scorew2.optim.FusedAdamW), M models per step;
- "torch.optim M": the same step with torch.optim.AdamW(fused=True), the same kernel behind
  torch.optim's Python (the previous round's trainer): the ratio is what FusedAdamW saves;
- "autograd M": the same batched model through autograd (ScoreNet.forward + backward);
- "kernel 3 regs x S": what the pipeline trains in one job: S seeds under each of the three
  regularisers (none, spectral_norm, weight_clip) as one batch of M = 3 S models; compared
  with the baseline and with the same 3 S models trained one at a time eagerly ("eager
  spectral_norm": torch's spectral_norm parametrization and ReLU; "eager weight_clip": every
  parameter clamped after each step);
- "train() M": the full scorew2.train.train loop (per-epoch draws, checkpoints) on N = 4000
  points, against the notebook-style loop (randperm, antithetic t, per-step noise) of the
  baseline model; "train() 3 regs x 3" as the pipeline's training job of one data set.

Against the machine's own batched GEMM: the kernel's FLOP rate (model-steps/s times the
network's 2 B (5 d H + 6 H^2) = 6.46 MFLOP of matrix products per model-step: forward, weight
and input gradients, B = 128, d = 2, H = 64) beside one-thread torch.bmm of M x (B x H) @
(H x H), the network's main shape, timed in the same run.

Usage: python benchmarks/bench_train.py [--repeats 5] [--steps 200] [--models 1 3 9 27] [--seeds 3]
One torch thread.  The machine may be shared: only ratios measured in one run count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from scorew2.model import REGULARIZERS, ScoreNet
from scorew2.optim import FusedAdamW
from scorew2.schedule import make_schedule
from scorew2.train import TrainConfig, train

T = 10
B = 128
D, H = 2, 64
# matrix-product FLOPs per model-step: forward 2B(2dH + 2H^2), weight gradients the same,
# input gradients of layers 2-4 2B(2H^2 + dH)
FLOP_PER_MODEL_STEP = 2 * B * (5 * D * H + 6 * H * H)
SCHED = make_schedule("sigmoid", T, 1e-5, 1e-2)


class _Gated(nn.Module):
    def __init__(self, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(fan_in, fan_out)
        self.embed = nn.Embedding(T, fan_out)
        self.embed.weight.data.uniform_()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.embed(t)


class BaselineNet(nn.Module):
    """The paper's network for one model, written with plain torch modules; for
    "spectral_norm" ReLU and torch's spectral_norm parametrization on the four linear layers."""

    def __init__(self, regularizer: str = "none") -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = _Gated(2, 64), _Gated(64, 64), _Gated(64, 64)
        self.l4 = nn.Linear(64, 2)
        self.act = F.softplus
        if regularizer == "spectral_norm":
            self.act = F.relu
            for lin in (self.l1.lin, self.l2.lin, self.l3.lin, self.l4):
                parametrizations.spectral_norm(lin)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.act(self.l1(x, t))
        h = self.act(self.l2(h, t))
        h = self.act(self.l3(h, t))
        return self.l4(h)


def _batches(m: int, n_batches: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_batches, m, B, 2, generator=g) * 0.5
    t = torch.randint(0, T, (n_batches, m, B), generator=g)
    eps = torch.randn(n_batches, m, B, 2, generator=g)
    ab = torch.as_tensor(SCHED.alpha_bars, dtype=torch.float32)
    w = (T / 2) * torch.as_tensor(SCHED.betas, dtype=torch.float32)[t] / (1 - ab[t])
    return x, t, eps, w


def baseline_step(seed: int, regularizer: str = "none") -> Callable[[int], None]:
    """One eager training step of one model; "weight_clip" clamps every parameter after it."""
    torch.manual_seed(seed)
    net = BaselineNet(regularizer)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01, foreach=False)
    x, t, eps, w = _batches(1, 16, seed)

    def step(k: int) -> None:
        j = k % 16
        out = net(x[j, 0], t[j, 0])
        loss = (w[j, 0] * (out - eps[j, 0]).square().sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if regularizer == "weight_clip":
            with torch.no_grad():
                for p in net.parameters():
                    p.clamp_(-0.1, 0.1)

    return step


def _mixed(seeds: int) -> tuple[list[int], list[str]]:
    """Seeds and regularisers of the pipeline's training job: ``seeds`` under each regulariser."""
    return list(range(seeds)) * len(REGULARIZERS), [r for r in REGULARIZERS for _ in range(seeds)]


def kernel_step(
    m: int, seed: int, autograd: bool = False, mixed: bool = False, torch_optim: bool = False
) -> Callable[[int], None]:
    """One step of the batched model; ``torch_optim``: torch.optim.AdamW(fused=True) in place
    of the trainer's FusedAdamW (the same kernel, bit-identical, without torch.optim's Python)."""
    seeds, regs = _mixed(m // 3) if mixed else (list(range(seed, seed + m)), ["none"] * m)
    net = ScoreNet(T, seeds, regs).train()
    if torch_optim:
        opt = torch.optim.AdamW([net.flat], lr=1e-3, weight_decay=0.01, fused=True)
    else:
        opt = FusedAdamW(net.flat, lr=1e-3, weight_decay=0.01)
    x, t, eps, w = _batches(m, 16, seed)

    def step(k: int) -> None:
        j = k % 16
        if autograd:
            net.flat.grad = None
            out = net(x[j], t[j])
            (w[j] * (out - eps[j]).square().sum(-1)).mean(1).sum().backward()
        else:
            net.dsm_loss_and_grad(x[j], t[j], eps[j], w[j])
        grad = net.flat.grad
        norm = torch.linalg.vector_norm(grad, dim=1)
        grad.mul_((1.0 / (norm + 1e-6)).clamp_(max=1.0).unsqueeze(1))
        opt.step()
        if mixed:
            net.clip_weights_(0.1)

    return step


def _rate(step: Callable[[int], None], steps: int, per_step: int) -> float:
    t0 = time.perf_counter()
    for k in range(steps):
        step(k)
    return steps * per_step / (time.perf_counter() - t0)


def gemm_rate(m: int, steps: int, repeats: int) -> float:
    """GFLOP/s of torch.bmm on M x (B x H) @ (H x H) float32, the median of ``repeats``."""
    gen = torch.Generator().manual_seed(m)
    a, w = torch.randn(m, B, H, generator=gen), torch.randn(m, H, H, generator=gen)
    out = torch.empty(m, B, H)
    for _ in range(20):
        torch.bmm(a, w, out=out)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            torch.bmm(a, w, out=out)
        rates.append(steps * m * 2 * B * H * H / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def baseline_train(data: np.ndarray, epochs: int, seed: int) -> None:
    """The notebook's loop (randperm batches, antithetic t, weighted loss) for one model."""
    torch.manual_seed(seed)
    net = BaselineNet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01, foreach=False)
    x0 = torch.as_tensor(data, dtype=torch.float32)
    ab = torch.as_tensor(SCHED.alpha_bars, dtype=torch.float32)
    betas = torch.as_tensor(SCHED.betas, dtype=torch.float32)
    for _ in range(epochs):
        perm = torch.randperm(len(x0))
        for i in range(0, len(x0), B):
            xb = x0[perm[i : i + B]]
            h = torch.randint(0, T, (len(xb) // 2 + 1,))
            t = torch.cat([h, T - 1 - h])[: len(xb)]
            e = torch.randn_like(xb)
            xt = ab[t].sqrt().unsqueeze(1) * xb + (1 - ab[t]).sqrt().unsqueeze(1) * e
            out = net(xt, t)
            loss = ((T / 2) * betas[t] / (1 - ab[t]) * (out - e).square().sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--models", type=int, nargs="+", default=[1, 3, 9, 27])
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3, help="seeds per regulariser (mixed batch)")
    ap.add_argument("--no-train", action="store_true", help="skip the end-to-end train() part")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"cpu {torch.backends.cpu.get_cpu_capability()}"
    )

    # ---- per-step kernels (interleaved rounds; medians)
    cands: dict[str, tuple[Callable[[int], None], int]] = {"baseline eager": (baseline_step(0), 1)}
    for reg in REGULARIZERS[1:]:
        cands[f"eager {reg}"] = (baseline_step(0, reg), 1)
    for m in args.models:
        cands[f"kernel M={m}"] = (kernel_step(m, 0), m)
    compared = [m for m in args.models if m in (3, 9)]
    for m in compared:  # the previous round's step: torch.optim's AdamW around the same kernel
        cands[f"torch.optim M={m}"] = (kernel_step(m, 0, torch_optim=True), m)
    cands[f"kernel 3 regs x {args.seeds}"] = (
        kernel_step(3 * args.seeds, 0, mixed=True),
        3 * args.seeds,
    )
    for m in (1, max(args.models)):
        cands[f"autograd M={m}"] = (kernel_step(m, 0, autograd=True), m)
    for step, _ in cands.values():  # warm-up
        for k in range(20):
            step(k)
    rates: dict[str, list[float]] = {k: [] for k in cands}
    for _ in range(args.repeats):
        for name, (step, per) in cands.items():
            rates[name].append(_rate(step, args.steps, per))
    base = statistics.median(rates["baseline eager"])
    print(f"\n{'per step':<18} {'model-steps/s':>14} {'ratio':>7}   (median of {args.repeats})")
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"{name:<18} {med:14.0f} {med / base:7.2f}")
    # the same 3 S models trained one at a time, eagerly: the mean time per model-step
    eager = {"none": base} | {r: statistics.median(rates[f"eager {r}"]) for r in REGULARIZERS[1:]}
    matched = len(eager) / sum(1.0 / v for v in eager.values())
    mixed = statistics.median(rates[f"kernel 3 regs x {args.seeds}"])
    for m in compared:
        ours, theirs = (statistics.median(rates[f"{k} M={m}"]) for k in ("kernel", "torch.optim"))
        print(
            f"kernel M={m} (FusedAdamW) against torch.optim.AdamW(fused=True): {ours / theirs:.2f}x"
        )
    print(
        f"\nkernel 3 regs x {args.seeds} against the same models trained one at a time eagerly "
        f"({matched:.0f} model-steps/s): {mixed / matched:.2f}x"
    )

    print(f"\n{'against bmm':<18} {'kernel GFLOP/s':>14} {'bmm GFLOP/s':>12} {'share':>6}")
    for m in args.models:
        kernel = statistics.median(rates[f"kernel M={m}"]) * FLOP_PER_MODEL_STEP / 1e9
        gemm = gemm_rate(m, 20 * args.steps, args.repeats)
        print(f"{'kernel M=' + str(m):<18} {kernel:14.2f} {gemm:12.2f} {kernel / gemm:6.0%}")

    if args.no_train:
        return
    # ---- end to end: train() vs the notebook loop, N = 4000, no maximise phase
    data = np.random.default_rng(0).normal(size=(4000, 2)) * 0.3
    e = args.train_epochs
    steps = e * -(-4000 // B)
    cfg = TrainConfig(epochs=e, maximize_epochs=0, dense_epochs=e, n_checkpoints=e + 1)
    runs: dict[str, tuple[Callable[[], None], int]] = {
        "notebook loop": (lambda: baseline_train(data, e, 0), 1)
    }
    for m in args.models:
        runs[f"train() M={m}"] = (
            lambda m=m: train(data, SCHED, list(range(m)), "none", config=cfg),
            m,
        )
    seeds, regs = _mixed(args.seeds)
    runs[f"train() 3 regs x {args.seeds}"] = (
        lambda: train(data, SCHED, seeds, regs, config=cfg),
        len(seeds),
    )
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(max(1, args.repeats // 2)):
        for name, (fn, per) in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(steps * per / (time.perf_counter() - t0))
    base = statistics.median(times["notebook loop"])
    print(f"\n{'end to end':<18} {'model-steps/s':>14} {'ratio':>7}   ({e} epochs of 4000 points)")
    for name, r in times.items():
        med = statistics.median(r)
        print(f"{name:<18} {med:14.0f} {med / base:7.2f}")


if __name__ == "__main__":
    main()
