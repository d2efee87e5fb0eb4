"""Training M score networks at once, each exactly as it would train alone.

docs/paper.md section 4.

Per model m (seed s_m), each epoch:
- a fresh permutation of the N data points, batches of ``batch_size`` (the last one partial,
  as the authors' loop over ``randperm``);
- antithetic time steps per batch of size B_k: t' ~ U{0..T-1} (B_k // 2 + 1 draws), then
  t = concat(t', T - 1 - t')[:B_k] (the notebook's ``noise_estimation_loss``);
- eps ~ N(0, I) and x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps;
- loss (likelihood weighting, docs/paper.md section 2), on the authors' scale (their
  ``noise_estimation_2_loss``: a mean over the d coordinates, no factor T / 2):

      L_m = mean_b b_t / (1 - abar_t) * ||eps_theta(x_t, t) - eps||^2 / d,

  E[L_m] = 2 J_DSM / (T d) with J_DSM = 1/2 sum_i b_i / (1 - abar_i) E||eps_theta - eps||^2
  (full squared norm). A constant multiple of J_DSM has the same minimisers and the same AdamW
  steps; the scale matters only to gradient-norm clipping, whose bound (1.0) is the authors'
  and so is kept on their scale. J_DSM itself is evaluated by scorew2.evaluate;
- for the first ``maximize_epochs`` epochs the sign is flipped (the maximise phase);
- per-model gradient-norm clipping (torch's formula: g *= min(1, c / (||g|| + 1e-6)), the norm
  over all of the model's parameters), AdamW, and for "weight_clip" every parameter clamped to
  [-weight_clip, weight_clip] after each step (the config key of the same name).

The models may have different regularisers (one name per model, see ``ScoreNet``): a data set's
seeds under every regulariser then train as one batch, each model exactly as alone.

The total loss is sum_m L_m, so gradients, clipping and AdamW (elementwise) stay per model.
Randomness: model m's weights come from ``torch.Generator().manual_seed(s_m)`` (see
``ScoreNet``); its data order, time steps and noise from a second generator on the stream
``scorew2.streams.stream_seed(s_m, "training")`` (a SeedSequence child of s_m), drawn on the
CPU at the start of each epoch in the order: permutation (N), t' (n_batches, B // 2 + 1),
eps (N, d). So model m's trajectory does not depend on the other models of the batch, nor on
the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorew2._checks import as_points, check_choice
from scorew2.io import save_torch
from scorew2.model import (
    ScoreNet,
    model_regularizers,
    regularizer_slices,
    regularizer_state,
    stack_states,
)
from scorew2.optim import FusedAdamW
from scorew2.schedule import Schedule
from scorew2.streams import stream_seed

__all__ = [
    "DEVICES",
    "STATE_FORMAT",
    "STATE_VERSION",
    "DivergenceError",
    "StateFileError",
    "TrainConfig",
    "TrainResult",
    "checkpoint_epochs",
    "load_state",
    "resolve_device",
    "train",
]

STATE_FORMAT = "scorew2-train-state"
STATE_VERSION = 2
DEVICES = ("cpu", "cuda", "auto")


class DivergenceError(RuntimeError):
    """A non-finite loss or gradient during training; names the epoch, step and model."""

    def __init__(self, epoch: int, step: int, model: int, seed: int, what: str) -> None:
        self.epoch, self.step, self.model, self.seed = epoch, step, model, seed
        super().__init__(
            f"training diverged: non-finite {what} at epoch {epoch} (1-based), step {step} "
            f"(0-based, within the epoch), model index {model} (seed {seed})"
        )


class StateFileError(ValueError):
    """A resume state file that cannot be read or does not belong to this run."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (defaults: the authors' notebook, docs/paper.md section 4)."""

    epochs: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    maximize_epochs: int = 10
    weight_clip: float = 0.1
    dense_epochs: int = 20
    n_checkpoints: int = 100
    save_every: int = 50
    hidden: int = 64
    init: str = "torch"
    flush_denormal: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "maximize_epochs", "dense_epochs"):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {val!r}")
        for name in ("batch_size", "n_checkpoints", "save_every", "hidden"):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {val!r}")
        for name in ("lr", "grad_clip", "weight_clip"):
            val = getattr(self, name)
            if not (isinstance(val, int | float) and math.isfinite(val) and val > 0):
                raise ValueError(f"{name}: expected a positive number, got {val!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay: expected a number >= 0, got {self.weight_decay!r}")


@dataclass
class TrainResult:
    """Checkpoints and loss history of M models trained together.

    epochs: the checkpoint epochs (0 = initial model, ``config.epochs`` = final).
    regularizer: the name shared by every model, or one name per model (``ScoreNet``).
    states: one batched ScoreNet state (M models: ``flat`` and SN buffers) per checkpoint.
    loss_history: (E, M) float64, each model's training loss L_m of the module doc (unsigned),
        b_t/(1-abar_t) ||eps_theta - eps||^2 / d averaged over epoch e's points (row e-1 =
        epoch e); E[L_m] = 2 J_DSM / (T d).
    """

    epochs: list[int]
    states: list[dict[str, torch.Tensor]]
    loss_history: np.ndarray
    seeds: list[int]
    regularizer: str | list[str]
    n_steps: int
    config: dict[str, Any] = field(default_factory=dict)
    dim: int = 2

    def model(self, checkpoints: Sequence[int] | None = None) -> ScoreNet:
        """One eval-mode ScoreNet holding the given checkpoint indices (default: all).

        Model k * M + m is seed m at ``epochs[checkpoints[k]]``. For one regulariser: ``select``
        one first from a mixed result.
        """
        if not isinstance(self.regularizer, str):
            raise ValueError("model: a mixed-regularizer result; select(regularizer) first")
        idx = range(len(self.states)) if checkpoints is None else checkpoints
        state = stack_states([self.states[i] for i in idx])
        net = ScoreNet.from_state(
            state,
            self.n_steps,
            self.regularizer,
            dim=self.dim,
            hidden=int(self.config.get("hidden", 64)),
        )
        return net.eval()

    def select(self, regularizer: str) -> TrainResult:
        """The models of one regulariser: the result of training them alone."""
        regs = model_regularizers(self.regularizer, len(self.seeds))
        s = regularizer_slices(regs).get(regularizer)
        if s is None:
            raise ValueError(f"regularizer: no {regularizer!r} models in this result")
        return dataclasses.replace(
            self,
            states=[regularizer_state(st, regs, regularizer) for st in self.states],
            loss_history=self.loss_history[:, s].copy(),
            seeds=self.seeds[s],
            regularizer=regularizer,
        )


def checkpoint_epochs(epochs: int, dense_epochs: int = 20, n_checkpoints: int = 100) -> list[int]:
    """Sorted checkpoint epochs: every epoch 0..dense_epochs, then log-spaced to ``epochs``.

    Exactly min(n_checkpoints, epochs + 1) distinct epochs, always containing 0 and ``epochs``
    (when epochs <= dense_epochs or n_checkpoints >= epochs + 1: every epoch 0..epochs).  The
    log-spaced part is round(geomspace(dense_epochs, epochs, n - dense_epochs)) made strictly
    increasing (each at least one after the previous and leaving room for the rest).
    Requires n_checkpoints >= dense_epochs + 2 otherwise.
    """
    for name, val in (
        ("epochs", epochs),
        ("dense_epochs", dense_epochs),
        ("n_checkpoints", n_checkpoints),
    ):
        if not isinstance(val, int | np.integer) or isinstance(val, bool) or val < 0:
            raise ValueError(f"{name}: expected an integer >= 0, got {val!r}")
    if epochs <= dense_epochs or n_checkpoints >= epochs + 1:
        return list(range(epochs + 1))
    if n_checkpoints < dense_epochs + 2:
        raise ValueError(
            f"n_checkpoints ({n_checkpoints}) must be >= dense_epochs + 2 ({dense_epochs + 2})"
        )
    k = n_checkpoints - dense_epochs  # log part including dense_epochs itself and epochs
    start = max(dense_epochs, 1)
    grid = np.geomspace(start, epochs, k)
    pts = [round(v) for v in grid]
    pts[0], pts[-1] = dense_epochs, epochs
    for j in range(1, k):  # strictly increasing
        pts[j] = max(pts[j], pts[j - 1] + 1)
    for j in range(k - 2, -1, -1):  # leave room below epochs
        pts[j] = min(pts[j], pts[j + 1] - 1)
    return list(range(dense_epochs)) + pts


def resolve_device(device: str) -> torch.device:
    """ "cpu" | "cuda" | "auto" (cuda when available) -> torch.device."""
    check_choice(device, DEVICES, "device")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' requested but CUDA is not available")
    return torch.device(device)


def _data_hash(data: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(data, dtype=np.float64).tobytes()).hexdigest()


def _epoch_draws(
    gen: torch.Generator, n: int, dim: int, n_steps: int, batch: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One model's randomness for one epoch: permutation (n,), antithetic t (n,), eps (n, d)."""
    perm = torch.randperm(n, generator=gen)
    n_full, rem = divmod(n, batch)
    n_batches = n_full + (rem > 0)
    half = torch.randint(0, n_steps, (n_batches, batch // 2 + 1), generator=gen)
    eps = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    parts = []
    if n_full:
        h = half[:n_full]
        parts.append(torch.cat([h, n_steps - 1 - h], dim=1)[:, :batch].reshape(-1))
    if rem:
        h = half[n_full, : rem // 2 + 1]
        parts.append(torch.cat([h, n_steps - 1 - h])[:rem])
    return perm, torch.cat(parts), eps


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state file; StateFileError (a ValueError) naming the file otherwise."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, ...: all mean "unreadable"
        raise StateFileError(
            f"state file {path}: cannot be read ({type(err).__name__}: {err}); "
            "delete it to train from scratch"
        ) from err
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise StateFileError(f"state file {path}: not a {STATE_FORMAT} file")
    if state.get("version") != STATE_VERSION:
        raise StateFileError(
            f"state file {path}: version {state.get('version')}, expected {STATE_VERSION}"
        )
    return state


def train(
    data: Any,
    schedule: Schedule,
    seeds: Sequence[int],
    regularizer: str | Sequence[str] = "none",
    *,
    config: TrainConfig | None = None,
    state_path: str | os.PathLike | None = None,
    device: str = "cpu",
    stop_at: int | None = None,
    progress: Callable[[int, np.ndarray], None] | None = None,
) -> TrainResult:
    """Train one ScoreNet per seed on ``data`` (n, d) with ``schedule``; see the module doc.

    Parameters
    ----------
    data : array or tensor of shape (N, d)
        The training set p_0.
    schedule : Schedule
        The noise schedule (T = schedule.T steps).
    seeds : sequence of int
        One non-negative integer per model (M = len(seeds)).
    regularizer : str or sequence of str
        "none" | "spectral_norm" | "weight_clip" for every model, or one of them per model
        (each name's models contiguous; a seed at most once per name).
    config : TrainConfig, optional
        Hyper-parameters (TrainConfig defaults: the paper's).
    state_path : path-like, optional
        Resume state file; read if it exists, written atomically every ``config.save_every``
        epochs and at the end (an interruption loses at most ``save_every`` epochs; the state
        holds every checkpoint so far).
    device : {"cpu", "cuda", "auto"}
        Where the network runs; randomness is drawn on the CPU either way.
    stop_at : int, optional
        Stop after this epoch (saving the state), as an interruption would; the returned
        result then holds the checkpoints so far.
    progress : callable, optional
        Called as progress(epoch, mean_losses (M,)) after every epoch.

    Returns
    -------
    TrainResult

    Raises
    ------
    DivergenceError
        A non-finite loss, gradient norm or parameter (epoch, step and model named).
    StateFileError
        ``state_path`` exists but is unreadable or belongs to another run.

    Notes
    -----
    With ``config.flush_denormal`` (default) the run is done under
    ``torch.set_flush_denormal(True)`` (denormal floats, below 1.2e-38, read as 0: the
    maximise phase drives sigmoid/softplus into denormals, which are slow; benchmarks/
    README.md), reset to torch's default False on return. Threads are left to the caller.
    """
    cfg = config if config is not None else TrainConfig()
    x0, seeds, regularizer = _checked_inputs(data, schedule, seeds, regularizer, cfg, stop_at)
    if cfg.flush_denormal:
        torch.set_flush_denormal(True)
    try:
        run = _Run(x0, schedule, seeds, regularizer, cfg, resolve_device(device))
        run.start(Path(state_path) if state_path is not None else None)
        run.loop(cfg.epochs if stop_at is None else stop_at, progress)
        return run.result()
    finally:
        if cfg.flush_denormal:
            torch.set_flush_denormal(False)


def _checked_inputs(
    data: Any,
    schedule: Schedule,
    seeds: Sequence[int],
    regularizer: str | Sequence[str],
    cfg: TrainConfig,
    stop_at: int | None,
) -> tuple[np.ndarray, list[int], str | list[str]]:
    """The training set as float64 points, the seeds as ints and the regulariser (a name,
    or a plain per-model list); ValueError naming the argument otherwise."""
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule: expected a Schedule, got {type(schedule).__name__}")
    x0 = as_points(data, "data")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds: expected non-negative integers, got {seeds}")
    regs = model_regularizers(regularizer, len(seeds))
    if len(set(zip(regs, seeds, strict=True))) != len(seeds):
        raise ValueError(f"seeds: duplicate seeds {seeds} (regularizers {regs})")
    if stop_at is not None and not 0 <= stop_at <= cfg.epochs:
        raise ValueError(f"stop_at: expected an epoch in [0, {cfg.epochs}], got {stop_at}")
    return x0, seeds, regularizer if isinstance(regularizer, str) else regs


class _Run:
    """One training run of M models: network, optimiser, generators, checkpoints so far, and
    the steps of the loop (resume, epoch batches, one step, save)."""

    def __init__(
        self,
        x0: np.ndarray,
        schedule: Schedule,
        seeds: list[int],
        regularizer: str | list[str],
        cfg: TrainConfig,
        dev: torch.device,
    ) -> None:
        self.schedule, self.seeds, self.regularizer, self.cfg = schedule, seeds, regularizer, cfg
        n, dim = x0.shape
        self.identity = {
            "config": dataclasses.asdict(cfg),
            "regularizer": regularizer,
            "seeds": seeds,
            "betas": [float(b) for b in schedule.betas],
            "data_sha256": _data_hash(x0),
            "data_shape": [n, dim],
        }
        self.net = ScoreNet(
            schedule.T, seeds, regularizer, dim=dim, hidden=cfg.hidden, init=cfg.init
        ).to(dev)
        self.net.train()
        self.opt = FusedAdamW(self.net.flat, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.gens = [torch.Generator().manual_seed(stream_seed(s, "training")) for s in seeds]
        self.dev = dev
        self.data64 = torch.as_tensor(x0, dtype=torch.float64)
        self.weight = torch.as_tensor(schedule.dsm_weight, dtype=torch.float64) / dim
        self.epoch = 0
        self.saved_epochs: list[int] = []
        self.saved_states: list[dict[str, torch.Tensor]] = []
        self.history: list[np.ndarray] = []
        self.path: Path | None = None

    def start(self, path: Path | None) -> None:
        """Resume from the state file ``path`` if it exists, else checkpoint epoch 0."""
        self.path = path
        if path is not None and path.exists():
            self._resume(load_state(path))
        if self.epoch == 0 and not self.saved_epochs:
            self.saved_epochs.append(0)
            self.saved_states.append(self._snapshot())
            self._save()

    def _resume(self, st: dict[str, Any]) -> None:
        if st.get("identity") != self.identity:
            ident = st.get("identity", {})
            diff = sorted(k for k in self.identity if ident.get(k) != self.identity[k])
            raise StateFileError(
                f"state file {self.path}: belongs to another run (differs in "
                f"{', '.join(diff)}); delete it or use another path"
            )
        try:
            self.net.load_state_dict(st["model"])
            self.opt.load_state_dict(st["optimizer"])
            for g, gs in zip(self.gens, st["generators"], strict=True):
                g.set_state(gs)
            self.epoch = int(st["epoch"])
            self.saved_epochs = [int(e) for e in st["checkpoint_epochs"]]
            self.saved_states = list(st["checkpoint_states"])
            self.history = [row.numpy() for row in st["loss_history"]]
        except (KeyError, RuntimeError, ValueError) as err:
            raise StateFileError(
                f"state file {self.path}: incomplete or inconsistent ({err})"
            ) from err

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}

    def _save(self) -> None:
        if self.path is None:
            return
        save_torch(
            {
                "format": STATE_FORMAT,
                "version": STATE_VERSION,
                "identity": self.identity,
                "epoch": self.epoch,
                "model": self._snapshot(),
                "optimizer": self.opt.state_dict(),
                "generators": [g.get_state() for g in self.gens],
                "checkpoint_epochs": list(self.saved_epochs),
                "checkpoint_states": self.saved_states,
                "loss_history": torch.as_tensor(
                    np.array(self.history).reshape(-1, len(self.seeds))
                ),
            },
            self.path,
        )

    def _epoch_batches(self) -> tuple[torch.Tensor, ...]:
        """Every model's epoch of noised points: x_t, eps, DSM weights and steps, (M, N, ...)."""
        n, dim = self.data64.shape
        draws = [_epoch_draws(g, n, dim, self.schedule.T, self.cfg.batch_size) for g in self.gens]
        perm = torch.stack([d[0] for d in draws])
        t_all = torch.stack([d[1] for d in draws])
        eps64 = torch.stack([d[2] for d in draws])
        xt = self.schedule.noise(self.data64[perm], eps64, t_all)
        return (
            xt.to(self.dev, torch.float32),
            eps64.to(self.dev, torch.float32),
            self.weight[t_all].to(self.dev, torch.float32),
            t_all.to(self.dev),
        )

    def _step(self, batch: tuple[torch.Tensor, ...], sign: float, k: int) -> torch.Tensor:
        """One optimiser step on batch k; raises DivergenceError on a non-finite loss or
        gradient. Returns the per-model losses."""
        net, cfg = self.net, self.cfg
        losses = net.dsm_loss_and_grad(*batch, sign)
        grad = net.flat.grad
        norm = torch.linalg.vector_norm(grad, dim=1)
        if not bool(torch.isfinite(torch.cat((losses, norm))).all()):
            bad_l = ~torch.isfinite(losses)
            m = int(torch.nonzero(bad_l | ~torch.isfinite(norm))[0, 0])
            what = "loss" if bool(bad_l[m]) else "gradient"
            raise DivergenceError(self.epoch + 1, k, m, self.seeds[m], what)
        grad.mul_((cfg.grad_clip / (norm + 1e-6)).clamp_(max=1.0).unsqueeze(1))
        self.opt.step()
        if "weight_clip" in net.segments:
            net.clip_weights_(cfg.weight_clip)
        return losses

    def _epoch(self) -> np.ndarray:
        """One epoch over every batch; returns each model's mean loss."""
        n, B = self.data64.shape[0], self.cfg.batch_size
        xt, eps, w, t_all = self._epoch_batches()
        sign = -1.0 if self.epoch < self.cfg.maximize_epochs else 1.0
        total = torch.zeros(len(self.seeds), dtype=torch.float64, device=self.dev)
        n_batches = -(-n // B)
        for k in range(n_batches):
            sl = slice(k * B, min(n, (k + 1) * B))
            losses = self._step((xt[:, sl], t_all[:, sl], eps[:, sl], w[:, sl]), sign, k)
            total.add_(losses, alpha=sl.stop - sl.start)
        self.epoch += 1
        flat = self.net.flat.detach()
        if not np.isfinite(flat.sum(dim=1).cpu().numpy()).all():
            m = int(np.flatnonzero(~torch.isfinite(flat).all(dim=1).cpu().numpy())[0])
            raise DivergenceError(self.epoch, n_batches - 1, m, self.seeds[m], "parameter")
        return (total / n).cpu().numpy()

    def loop(self, last: int, progress: Callable[[int, np.ndarray], None] | None) -> None:
        """Train until epoch ``last``: checkpoints on the schedule, the state every
        ``save_every`` epochs and at the end."""
        cfg = self.cfg
        ckpt = set(checkpoint_epochs(cfg.epochs, cfg.dense_epochs, cfg.n_checkpoints))
        while self.epoch < last:
            mean = self._epoch()
            self.history.append(mean)
            if progress is not None:
                progress(self.epoch, mean)
            if self.epoch in ckpt:
                self.saved_epochs.append(self.epoch)
                self.saved_states.append(self._snapshot())
            if self.epoch % cfg.save_every == 0 or self.epoch == last:
                self._save()

    def result(self) -> TrainResult:
        return TrainResult(
            epochs=list(self.saved_epochs),
            states=list(self.saved_states),
            loss_history=np.array(self.history, dtype=np.float64).reshape(-1, len(self.seeds)),
            seeds=self.seeds,
            regularizer=self.regularizer,
            n_steps=self.schedule.T,
            config=dataclasses.asdict(self.cfg),
            dim=int(self.data64.shape[1]),
        )
