"""The paper's noise-prediction network, M independent copies evaluated in one batched pass.

docs/paper.md section 4 (the authors' ``ConditionalModel``): three gated layers 2 -> 64 -> 64 -> 64,

    h_l = act((h_{l-1} W_l^T + c_l) * gamma_l[t]),   gamma_l an embedding (T, 64),

then a final linear layer eps_theta(x, t) = h_3 W_4^T + c_4.  act = softplus, or ReLU with every
linear weight spectrally normalised (``regularizer="spectral_norm"``).  The score of the network
is s_theta(x, t) = -eps_theta(x, t) / sqrt(1 - abar_t) (docs/paper.md section 1).

Batching: every parameter and buffer has a leading model axis of size M = ``n_models``.  All the
parameters of model m live in one row ``flat[m]`` of a single (M, P) parameter, so that the
optimiser, gradient-norm clipping and weight clipping act on one tensor (one kernel each) while
staying exactly per model.  ``params()`` gives named views (weights stored (out, in) as in
``torch.nn.Linear``).  Model m is initialised from its own generator
``torch.Generator().manual_seed(seeds[m])`` only, so it is identical whatever the other models
of the batch are.

Regularisers may differ between the models of one batch (``regularizer`` a sequence, one name
per model, each name's models contiguous): the trainer then trains the seeds of every
regulariser of a data set in one batched pass; model m is still exactly the model trained alone
(its activation, spectral normalisation and weight clipping act on its own row only).

Spectral normalisation follows ``torch.nn.utils.parametrizations.spectral_norm`` (one power
iteration per training forward on persistent u, v buffers, 15 iterations at construction,
W_sn = W / (u^T W v) with u, v held constant for the gradient; eval mode uses the stored u, v
without updating them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scorew2._checks import check_choice
from scorew2.runs import REGULARIZERS
from scorew2.schedule import Schedule

__all__ = [
    "INITS",
    "N_GATED",
    "REGULARIZERS",
    "ScoreNet",
    "model_regularizers",
    "regularizer_slices",
    "regularizer_state",
    "select_state",
    "split_state",
    "stack_states",
]

INITS = ("torch", "xavier")
_SN_EPS = 1e-12
_SN_INIT_ITERS = 15
N_GATED = 3
_W = ("W1", "W2", "W3", "W4")
_C = ("c1", "c2", "c3", "c4")


def model_regularizers(regularizer: str | Sequence[str], n_models: int) -> list[str]:
    """One regulariser name per model, from a name shared by all or a per-model sequence."""
    regs = [regularizer] * n_models if isinstance(regularizer, str) else list(regularizer)
    if len(regs) != n_models:
        raise ValueError(f"regularizer: {len(regs)} names for {n_models} models")
    for name in regs:
        check_choice(name, REGULARIZERS, "regularizer")
    return [str(name) for name in regs]


def regularizer_slices(regularizers: Sequence[str]) -> dict[str, slice]:
    """The models of each regulariser, in order of appearance: name -> slice of the model axis.

    Raises ValueError for an unknown name or for a name whose models are not contiguous.
    """
    out: dict[str, slice] = {}
    start = 0
    for k, name in enumerate(regularizers):
        check_choice(name, REGULARIZERS, "regularizer")
        if k + 1 == len(regularizers) or regularizers[k + 1] != name:
            if name in out:
                raise ValueError(
                    f"regularizer: the models of {name!r} must be contiguous, got "
                    f"{list(regularizers)}"
                )
            out[name] = slice(start, k + 1)
            start = k + 1
    return out


def _layer_dims(dim: int, hidden: int) -> list[tuple[int, int]]:
    """(in, out) of the four linear layers."""
    return [(dim, hidden), (hidden, hidden), (hidden, hidden), (hidden, dim)]


def _row_layout(
    n_steps: int, dims: Sequence[tuple[int, int]], hidden: int
) -> tuple[dict[str, tuple[int, tuple[int, ...]]], int, int]:
    """Where each parameter lives in one model's row of ``flat``: name -> (offset, shape).

    The row holds the gates (T, 3, H), then W_l (out, in) and c_l (out) per layer, padded to
    a multiple of 3H so that ``flat.view(-1, 3H)`` holds the gate rows: gate (m, t) is row
    m * gate_rows + t (one index_select gathers every gate). Returns the layout, the row
    length and gate_rows.
    """
    layout: dict[str, tuple[int, tuple[int, ...]]] = {}
    off = 0

    def add(name: str, shape: tuple[int, ...]) -> None:
        nonlocal off
        layout[name] = (off, shape)
        off += math.prod(shape)

    add("gamma", (n_steps, N_GATED, hidden))
    for i, (fi, fo) in enumerate(dims, start=1):
        add(f"W{i}", (fo, fi))
        add(f"c{i}", (fo,))
    row = N_GATED * hidden
    if off % row:
        add("pad", (row - off % row,))
    return layout, off, off // row


class ScoreNet(nn.Module):
    """M independent copies of the paper's gated MLP, evaluated as one batched model.

    Parameters
    ----------
    n_steps : int
        T, the number of diffusion steps (rows of each gate embedding).
    seeds : sequence of int or None
        One seed per model (M = len(seeds)); ``None`` leaves the parameters at zero (use with
        ``n_models`` before loading a state, see ``from_state``).
    regularizer : str or sequence of str
        One of ``REGULARIZERS`` for every model, or a sequence of M of them (each name's models
        contiguous). "none" and "weight_clip" use softplus; "spectral_norm" uses ReLU and
        spectrally normalises all four linear weights.
    n_models : int, optional
        M when ``seeds`` is None.
    dim : int
        Data dimension d (2 in the paper).
    hidden : int
        Width (64 in the paper).
    init : {"torch", "xavier"}
        "torch": the default of ``nn.Linear`` (weights and biases uniform on
        [-1/sqrt(fan_in), 1/sqrt(fan_in)]); "xavier": the authors' notebook (the three gated
        weights ~ N(0, 2 / (fan_in + fan_out)), the last layer as "torch"). Gates are uniform
        on [0, 1) in both.
    """

    def __init__(
        self,
        n_steps: int,
        seeds: Sequence[int] | None,
        regularizer: str | Sequence[str] = "none",
        *,
        n_models: int | None = None,
        dim: int = 2,
        hidden: int = 64,
        init: str = "torch",
    ) -> None:
        super().__init__()
        check_choice(init, INITS, "init")
        for name, val in (("n_steps", n_steps), ("dim", dim), ("hidden", hidden)):
            if not isinstance(val, int | np.integer) or isinstance(val, bool) or val < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {val!r}")
        if seeds is None:
            if n_models is None or int(n_models) < 1:
                raise ValueError("n_models: give seeds, or n_models >= 1 when seeds is None")
            m = int(n_models)
        else:
            seeds = [int(s) for s in seeds]
            if len(seeds) == 0:
                raise ValueError("seeds: expected at least one seed")
            if n_models is not None and int(n_models) != len(seeds):
                raise ValueError(f"n_models ({n_models}) != len(seeds) ({len(seeds)})")
            m = len(seeds)
        regs = model_regularizers(regularizer, m)
        self.segments = regularizer_slices(regs)
        self.regularizers = tuple(regs)
        #: the name when every model has it, else the per-model list (as the constructor takes)
        self.regularizer: str | list[str] = regs[0] if len(self.segments) == 1 else regs
        self.sn = self.segments.get("spectral_norm")
        self.n_steps = int(n_steps)
        self.dim = int(dim)
        self.hidden = int(hidden)
        self.n_models = m
        self.init_kind = init
        self.dims = _layer_dims(self.dim, self.hidden)

        self.layout, self.n_params, self.gate_rows = _row_layout(
            self.n_steps, self.dims, self.hidden
        )
        self.flat = nn.Parameter(torch.zeros(m, self.n_params))
        if self.sn is not None:  # u, v of the spectral_norm models only
            n_sn = self.sn.stop - self.sn.start
            for i, (fi, fo) in enumerate(self.dims, start=1):
                self.register_buffer(f"sn_u{i}", torch.zeros(n_sn, fo))
                self.register_buffer(f"sn_v{i}", torch.zeros(n_sn, fi))
        if seeds is not None:
            self._initialise(seeds)

    # ------------------------------------------------------------------ construction
    def _initialise(self, seeds: Sequence[int]) -> None:
        """Fill model m's row (and SN buffers) from ``torch.Generator().manual_seed(seeds[m])``.

        Draw order per model: for l = 1, 2, 3: W_l, c_l, gamma_l; then W_4, c_4; then for
        spectral_norm, per layer u ~ N(0, I), v ~ N(0, I) normalised, followed by 15 power
        iterations (as torch's parametrization does at registration).
        """
        with torch.no_grad():
            for m, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(seed)
                row = torch.zeros(self.n_params)
                gam = torch.empty(self.n_steps, N_GATED, self.hidden)
                for i, (fi, fo) in enumerate(self.dims, start=1):
                    bound = 1.0 / math.sqrt(fi)
                    w = torch.empty(fo, fi)
                    if self.init_kind == "xavier" and i <= N_GATED:
                        w.normal_(0.0, math.sqrt(2.0 / (fi + fo)), generator=g)
                    else:
                        w.uniform_(-bound, bound, generator=g)
                    c = torch.empty(fo).uniform_(-bound, bound, generator=g)
                    self._row_view(row, f"W{i}").copy_(w)
                    self._row_view(row, f"c{i}").copy_(c)
                    if i <= N_GATED:
                        gam[:, i - 1, :] = torch.empty(self.n_steps, self.hidden).uniform_(
                            0.0, 1.0, generator=g
                        )
                self._row_view(row, "gamma").copy_(gam)
                self.flat[m].copy_(row)
                if self.regularizers[m] == "spectral_norm":
                    for i, (fi, fo) in enumerate(self.dims, start=1):
                        u = F.normalize(
                            torch.empty(fo).normal_(0, 1, generator=g), dim=0, eps=_SN_EPS
                        )
                        v = F.normalize(
                            torch.empty(fi).normal_(0, 1, generator=g), dim=0, eps=_SN_EPS
                        )
                        w = self._row_view(row, f"W{i}")
                        for _ in range(_SN_INIT_ITERS):
                            u = F.normalize(w @ v, dim=0, eps=_SN_EPS)
                            v = F.normalize(w.T @ u, dim=0, eps=_SN_EPS)
                        getattr(self, f"sn_u{i}")[m - self.sn.start].copy_(u)
                        getattr(self, f"sn_v{i}")[m - self.sn.start].copy_(v)

    def _row_view(self, row: torch.Tensor, name: str) -> torch.Tensor:
        off, shape = self.layout[name]
        return row[off : off + math.prod(shape)].view(shape)

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture (without the weights)."""
        return {
            "n_steps": self.n_steps,
            "regularizer": self.regularizer,
            "dim": self.dim,
            "hidden": self.hidden,
            "n_models": self.n_models,
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, torch.Tensor],
        n_steps: int,
        regularizer: str | Sequence[str] = "none",
        *,
        dim: int = 2,
        hidden: int = 64,
    ) -> ScoreNet:
        """Build a ScoreNet holding ``state`` (M inferred from the model axis of ``state``)."""
        if "flat" not in state:
            raise ValueError("state: no 'flat' entry; not a ScoreNet state dict")
        net = cls(
            n_steps, None, regularizer, n_models=int(state["flat"].shape[0]), dim=dim, hidden=hidden
        )
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"state: does not fit ScoreNet({net.config()}): {err}") from err
        return net

    # ------------------------------------------------------------------ parameters
    def params(self, source: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named batched views of ``source`` (default: the parameter ``flat``).

        gamma: (M, T, 3, H); W_l: (M, out, in); c_l: (M, out).  Views (differentiable when
        ``source`` is the parameter), so writing into them writes into ``source``.
        """
        src = self.flat if source is None else source
        m = src.shape[0]
        out = {}
        for name, (off, shape) in self.layout.items():
            out[name] = src[:, off : off + math.prod(shape)].view(m, *shape)
        return out

    def _kernel_views(
        self, grad: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        """``params()`` of ``flat`` and of ``grad`` (detached views) and the gate-row offsets
        m * gate_rows (M, 1), built once per (flat, grad) storage: the training kernel runs
        them every step."""
        key = (self.flat.data_ptr(), grad.data_ptr(), self.flat.device)
        if getattr(self, "_views_key", None) != key:
            base = torch.arange(self.n_models, device=self.flat.device).mul_(self.gate_rows)
            self._views = (self.params(self.flat.detach()), self.params(grad), base.unsqueeze(1))
            self._views_key = key
        return self._views

    def _sn_vectors(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"sn_u{i}"), getattr(self, f"sn_v{i}")

    @torch.no_grad()
    def _power_iteration(self, i: int, w: torch.Tensor) -> torch.Tensor:
        """One power-iteration step on layer i, in place: u <- N(W v), v <- N(W^T u).

        ``w``: layer i's weights of the spectral_norm models (``self.sn``), (n_sn, out, in).
        Returns sigma = u^T W v of the new u, v without another product: with q = W^T u,
        v = q / max(|q|, eps), so u^T W v = |q|^2 / max(|q|, eps); shape (n_sn, 1, 1).
        (Matrix-vector products as broadcast sums: faster than bmm at these sizes.)
        """
        u, v = self._sn_vectors(i)
        w = w.detach()
        wv = (w * v.unsqueeze(1)).sum(-1)
        u.copy_(wv / torch.linalg.vector_norm(wv, dim=1, keepdim=True).clamp_min_(_SN_EPS))
        q = (w * u.unsqueeze(2)).sum(1)
        norm = torch.linalg.vector_norm(q, dim=1, keepdim=True)
        denom = norm.clamp_min(_SN_EPS)
        v.copy_(q / denom)
        return (norm.square() / denom).view(-1, 1, 1)

    def _sigma(self, i: int, w: torch.Tensor) -> torch.Tensor:
        """sigma = u^T W v with the stored (constant) u, v, for the spectral_norm models' weights
        ``w`` (n_sn, out, in); shape (n_sn, 1, 1); differentiable in W."""
        u, v = self._sn_vectors(i)
        wv = torch.bmm(w, v.unsqueeze(-1)).squeeze(-1)
        return (u * wv).sum(dim=1).view(-1, 1, 1)

    def effective_weights(self, update: bool | None = None) -> list[torch.Tensor]:
        """The four weights used by the forward pass (W_l / sigma_l for spectral_norm).

        ``update`` (default: ``self.training``) performs one power iteration first, as a
        training forward of torch's spectral_norm does.
        """
        p = self.params()
        ws = [p[f"W{i}"] for i in range(1, 5)]
        if self.sn is None:
            return ws
        if update is None:
            update = self.training
        out = []
        for i, w in enumerate(ws, start=1):
            w_sn = w[self.sn]
            if update:
                self._power_iteration(i, w_sn)
            out.append(self._with_sn(w, w_sn / self._sigma(i, w_sn)))
        return out

    def _with_sn(self, w: torch.Tensor, w_sn: torch.Tensor) -> torch.Tensor:
        """``w`` (M, ...) with the rows of the spectral_norm models replaced by ``w_sn``."""
        if w_sn.shape[0] == w.shape[0]:
            return w_sn
        return torch.cat([w[: self.sn.start], w_sn, w[self.sn.stop :]])

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        """act(z) per model: ReLU for spectral_norm, softplus otherwise; z (M, B, H)."""
        if len(self.segments) == 1:
            return F.relu(z) if self.sn is not None else F.softplus(z)
        return torch.cat(
            [
                F.relu(z[s]) if name == "spectral_norm" else F.softplus(z[s])
                for name, s in self.segments.items()
            ]
        )

    def _act_backward_(self, dh: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """dh * act'(z) in place: 1[z > 0] (ReLU) or sigmoid(z) (softplus), per model."""
        for name, s in self.segments.items():
            part, zs = (dh, z) if len(self.segments) == 1 else (dh[s], z[s])
            part.mul_(zs > 0 if name == "spectral_norm" else torch.sigmoid(zs))
        return dh

    @torch.no_grad()
    def clip_weights_(self, c: float = 0.1) -> None:
        """Weight clipping (docs/paper.md section 4): clamp every parameter of the weight_clip
        models to [-c, c], in place (the other models are left alone)."""
        if not c > 0:
            raise ValueError(f"c: expected a positive clip value, got {c}")
        s = self.segments.get("weight_clip")
        if s is not None:
            self.flat[s].clamp_(-c, c)

    # ------------------------------------------------------------------ evaluation
    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor) -> None:
        m = self.n_models
        if (
            not isinstance(x, torch.Tensor)
            or x.ndim != 3
            or x.shape[0] != m
            or x.shape[2] != self.dim
        ):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a tensor of shape (M={m}, B, d={self.dim}), got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"x: expected a floating-point tensor, got {x.dtype}")
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(x.shape[:2]):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"t: expected shape {tuple(x.shape[:2])} (M, B), got {shape}")
        if t.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"t: expected an integer tensor (int64), got {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.n_steps):
            raise ValueError(
                f"t: step out of range [0, {self.n_steps - 1}] "
                f"(min {int(t.min())}, max {int(t.max())})"
            )

    def _gate_index(self, t: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of ``flat.view(-1, 3H)`` holding gamma[m, t[m, b]], flattened (M * B,).

        ``base``: the offsets m * gate_rows (M, 1), when already at hand."""
        if base is None:
            base = torch.arange(t.shape[0], device=t.device).mul_(self.gate_rows).unsqueeze(1)
        return (t + base).reshape(-1)

    def _gates(
        self, flat: torch.Tensor, t: torch.Tensor, index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """gamma[m, t[m, b]] -> (M, B, 3, H), one index_select (see the row layout);
        ``index``: ``_gate_index(t)`` when already at hand."""
        rows = flat.view(-1, N_GATED * self.hidden)
        g = rows.index_select(0, self._gate_index(t) if index is None else index)
        return g.view(t.shape[0], t.shape[1], N_GATED, self.hidden)

    def _layers(
        self,
        x: torch.Tensor,
        ws: Sequence[torch.Tensor],
        p: dict[str, torch.Tensor],
        g: torch.Tensor,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
        """The network on x (M, B, d) with weights ``ws``, biases ``p`` and gates ``g``.

        h_0 = x; a_l = h_{l-1} W_l^T + c_l, z_l = a_l * gamma_l[t], h_l = act(z_l) (l = 1..3);
        out = h_3 W_4^T + c_4. Returns out, the (a_l, z_l) and the h_l (what the hand-written
        backward needs); autograd differentiates it as it is.
        """
        hs, pre = [x], []
        for i in range(1, N_GATED + 1):
            a = torch.baddbmm(p[_C[i - 1]].unsqueeze(1), hs[-1], ws[i - 1].transpose(1, 2))
            z = a * g[:, :, i - 1]
            pre.append((a, z))
            hs.append(self._activate(z))
        out = torch.baddbmm(p["c4"].unsqueeze(1), hs[-1], ws[3].transpose(1, 2))
        return out, pre, hs

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(x, t) for each model: x (M, B, d) float, t (M, B) int64 -> (M, B, d).

        Differentiable in x and in the parameters (autograd).  In training mode with
        spectral_norm, one power iteration updates u, v first.
        """
        self._check_inputs(x, t)
        x = x.to(self.flat.dtype)
        g = self._gates(self.flat, t.long())
        return self._layers(x, self.effective_weights(), self.params(), g)[0]

    def score(self, x: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
        """s_theta(x, t) = -eps_theta(x, t) / sqrt(1 - abar_t)  (``Schedule.eps_to_score``)."""
        if schedule.T != self.n_steps:
            raise ValueError(f"schedule: T = {schedule.T}, the network has {self.n_steps} steps")
        return schedule.eps_to_score(self(x, t), t)

    @torch.no_grad()
    def step_mlp(self, step: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """The network at one step as a plain MLP in float64: the gates folded into the weights.

        z_l = (W_l h + c_l) * gamma_l[step] = Wt_l h + ct_l with Wt_l = diag(gamma_l) W_l and
        ct_l = gamma_l * c_l (l = 1..3, W_l the effective weights: W / sigma for
        spectral_norm, with the stored u, v); the last layer (W_4, c_4) as it is. Returns the
        four (Wt (M, out, in), ct (M, out)) and a boolean (M,) mask of the ReLU models.
        """
        if isinstance(step, bool) or not 0 <= int(step) < self.n_steps:
            raise ValueError(f"step: expected an integer in [0, {self.n_steps - 1}], got {step!r}")
        p = {k: v.double() for k, v in self.params().items()}
        ws = [w.double() for w in self.effective_weights(update=False)]
        layers = []
        for i in range(1, 5):
            w, c = ws[i - 1], p[_C[i - 1]]
            if i <= N_GATED:
                g = p["gamma"][:, int(step), i - 1]
                w, c = w * g.unsqueeze(2), c * g
            layers.append((w, c))
        relu = torch.tensor([r == "spectral_norm" for r in self.regularizers])
        return layers, relu

    # ------------------------------------------------------------------ training kernel
    def _kernel_weights(
        self, raw: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """The training forward's weights: one power iteration per spectral_norm layer, then
        W_sn = W / sigma with sigma = u^T W v at the new u, v (``_power_iteration`` gives it
        without another product). Returns the weights, the sigmas and the W_sn (empty lists
        without spectral_norm)."""
        if self.sn is None:
            return raw, [], []
        sig, w_sns = [], []
        for i, w in enumerate(raw, start=1):
            sig.append(self._power_iteration(i, w[self.sn]))
            w_sns.append(w[self.sn] / sig[-1])
        return [self._with_sn(w, w_sn) for w, w_sn in zip(raw, w_sns, strict=True)], sig, w_sns

    def dsm_loss_and_grad(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        eps: torch.Tensor,
        weight: torch.Tensor,
        sign: float = 1.0,
    ) -> torch.Tensor:
        """Per-model weighted DSM loss and its gradient, by a hand-written backward pass.

        loss_m = mean_b weight[m, b] * ||eps_theta(xt[m, b], t[m, b]) - eps[m, b]||^2.
        Writes d(sign * sum_m loss_m)/d flat into ``self.flat.grad`` (allocated on first use)
        and returns the (unsigned) losses (M,).  Equal to autograd on ``forward`` (tested); as a
        training forward, it performs one power iteration for spectral_norm.  Inputs are not
        validated (internal use by the trainer).
        """
        if self.flat.grad is None:
            self.flat.grad = torch.zeros_like(self.flat)
        b = xt.shape[1]
        with torch.no_grad():
            p, gp, base = self._kernel_views(self.flat.grad)
            ws, sig, w_sns = self._kernel_weights([p[k] for k in _W])
            gate_rows = self._gate_index(t, base)
            g = self._gates(self.flat, t, gate_rows)
            out, pre, hs = self._layers(xt, ws, p, g)
            diff = out.sub_(eps)
            losses = (diff.square().sum(dim=2) * weight).mean(dim=1)
            # d loss / d out = sign * 2 w (out - eps) / B
            dout = diff.mul_((weight * (2.0 * sign / b)).unsqueeze(-1))
            dws, dg = self._backward(dout, pre, hs, ws, g, gp)
            for i in range(1, 5):
                gp[_W[i - 1]].copy_(self._sn_grad(i, dws[i - 1], sig, w_sns))
            gp["gamma"].zero_()
            rows = N_GATED * self.hidden
            self.flat.grad.view(-1, rows).index_add_(0, gate_rows, dg.view(-1, rows))
        return losses

    def _backward(
        self,
        dout: torch.Tensor,
        pre: list[tuple[torch.Tensor, torch.Tensor]],
        hs: list[torch.Tensor],
        ws: list[torch.Tensor],
        g: torch.Tensor,
        gp: dict[str, torch.Tensor],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Back-propagate d loss / d out through ``_layers``: writes the bias gradients into
        ``gp`` and returns the weight gradients dL/dW_l (of the effective weights) and the gate
        gradients dL/dgamma[t] (M, B, 3, H)."""
        m, b, _ = dout.shape
        dws: list[torch.Tensor] = [dout] * 4
        dws[3] = torch.bmm(dout.transpose(1, 2), hs[3])
        gp["c4"].copy_(dout.sum(dim=1))
        dh = torch.bmm(dout, ws[3])
        dg = torch.empty(m, b, N_GATED, self.hidden, dtype=dout.dtype, device=dout.device)
        for i in range(N_GATED, 0, -1):
            a, z = pre[i - 1]
            dz = self._act_backward_(dh, z)
            torch.mul(dz, a, out=dg[:, :, i - 1])
            da = dz.mul_(g[:, :, i - 1])
            if i == 1:  # (H x B)(B x d) is slow in bmm; (d x B)(B x H) then transpose
                dws[0] = torch.bmm(hs[0].transpose(1, 2), da).transpose(1, 2)
            else:
                dws[i - 1] = torch.bmm(da.transpose(1, 2), hs[i - 1])
            gp[_C[i - 1]].copy_(da.sum(dim=1))
            if i > 1:
                dh = torch.bmm(da, ws[i - 1])
        return dws, dg

    def _sn_grad(
        self, i: int, dw: torch.Tensor, sig: list[torch.Tensor], w_sns: list[torch.Tensor]
    ) -> torch.Tensor:
        """dL/dW_i from dL/dW_sn for the spectral_norm models (the others pass through).

        W_sn = W / sigma, sigma = u^T W v (u, v constant):  dW = (G - <G, W_sn> u v^T) / sigma.
        """
        if self.sn is None:
            return dw
        u, v = self._sn_vectors(i)
        g_sn = dw[self.sn]
        inner = (g_sn * w_sns[i - 1]).sum(dim=(1, 2)).view(-1, 1, 1)
        g_sn = (g_sn - inner * (u.unsqueeze(2) * v.unsqueeze(1))) / sig[i - 1]
        if g_sn.shape[0] == dw.shape[0]:
            return g_sn
        dw[self.sn] = g_sn
        return dw


# ---------------------------------------------------------------------- state helpers
def stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate ScoreNet states along the model axis: K states of M_k models -> sum M_k.

    Model j of state k lands at index sum_{k' < k} M_k' + j (for K checkpoints of S seeds
    each: index k * S + s).  All states must have the same keys and per-model shapes.
    """
    if len(states) == 0:
        raise ValueError("states: expected at least one state")
    keys = list(states[0].keys())
    for k, s in enumerate(states):
        if list(s.keys()) != keys:
            raise ValueError(f"states[{k}]: keys {list(s.keys())} differ from states[0] {keys}")
    try:
        return {key: torch.cat([s[key] for s in states], dim=0) for key in keys}
    except RuntimeError as err:
        raise ValueError(f"states: per-model shapes differ ({err})") from err


def select_state(
    state: dict[str, torch.Tensor], index: int | Sequence[int]
) -> dict[str, torch.Tensor]:
    """The models ``index`` of a batched state (an int keeps a model axis of size 1)."""
    idx = [index] if isinstance(index, int | np.integer) else list(index)
    m = int(state["flat"].shape[0])
    for i in idx:
        if not -m <= int(i) < m:
            raise ValueError(f"index: model {i} out of range for a state of {m} models")
    sel = torch.as_tensor(idx, dtype=torch.long)
    return {key: val.index_select(0, sel.to(val.device)).clone() for key, val in state.items()}


def regularizer_state(
    state: dict[str, torch.Tensor], regularizers: Sequence[str], name: str
) -> dict[str, torch.Tensor]:
    """The models of regulariser ``name`` in the state of a mixed batch (``regularizers``: one
    name per model, as ``ScoreNet`` takes them): a state of a ScoreNet(..., ``name``)."""
    segments = regularizer_slices(regularizers)
    if name not in segments:
        raise ValueError(f"regularizer: no {name!r} models in this state (has {list(segments)})")
    if int(state["flat"].shape[0]) != len(regularizers):
        raise ValueError(
            f"state: {int(state['flat'].shape[0])} models, {len(regularizers)} regularizers"
        )
    out = {"flat": state["flat"][segments[name]].clone()}
    if name == "spectral_norm":  # its u, v buffers hold the spectral_norm models only
        out.update({k: v.clone() for k, v in state.items() if k.startswith("sn_")})
    return out


def split_state(state: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """A batched state of M models -> M states of one model each."""
    return [select_state(state, m) for m in range(int(state["flat"].shape[0]))]
