"""AdamW on the trainer's single (M, P) parameter tensor, by torch's fused kernel.

Per element, at step k = 1, 2, ... (Loshchilov & Hutter's decoupled weight decay, as
``torch.optim.AdamW``), with gradient g, learning rate lr and weight decay wd:

    theta <- theta (1 - lr wd)
    m <- b1 m + (1 - b1) g,    v <- b2 v + (1 - b2) g^2
    theta <- theta - lr (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps)

The update is ATen's ``_fused_adamw_``, the kernel that ``torch.optim.AdamW(fused=True)`` runs,
on the same state (the step count a float32 scalar tensor on the parameter's device), so every
step is bit-identical to it (tested). What this class leaves out is torch.optim's machinery: its
constructor imports ``torch._dynamo`` (about 1.3 CPU-s in every training job) and its ``step()``
adds about 26-29 us of Python to each call of the kernel; without it a training step is 1.11x
faster at M = 3 models and 1.05x at M = 9 (benchmarks/README.md).
"""

from __future__ import annotations

import torch

__all__ = ["FusedAdamW"]

_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


class FusedAdamW:
    """AdamW for one parameter tensor (its ``.grad`` the gradient), torch's fused kernel.

    Parameters
    ----------
    param : torch.Tensor
        The parameter (a leaf with ``.grad`` set before each ``step``).
    lr, weight_decay, betas, eps : float
        As ``torch.optim.AdamW`` (same defaults but ``lr``, which is required).
    """

    def __init__(
        self,
        param: torch.Tensor,
        lr: float,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.param = param
        self.hyper = {
            "lr": float(lr),
            "beta1": float(betas[0]),
            "beta2": float(betas[1]),
            "weight_decay": float(weight_decay),
            "eps": float(eps),
        }
        self.state = {
            "step": torch.zeros((), dtype=torch.float32, device=param.device),
            "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
        }

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of ``param`` from ``param.grad``, in place."""
        st = self.state
        st["step"].add_(1)
        torch._fused_adamw_(
            [self.param],
            [self.param.grad],
            [st["exp_avg"]],
            [st["exp_avg_sq"]],
            [],
            [st["step"]],
            amsgrad=False,
            maximize=False,
            **self.hyper,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The moments and the step count (references, as torch's ``state_dict``)."""
        return dict(self.state)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a ``state_dict()`` in; ValueError when a key is missing or a shape differs."""
        for key in _STATE_KEYS:
            val = state.get(key) if isinstance(state, dict) else None
            if not isinstance(val, torch.Tensor) or val.shape != self.state[key].shape:
                got = tuple(val.shape) if isinstance(val, torch.Tensor) else type(val).__name__
                raise ValueError(
                    f"optimizer state: {key!r} expected shape {tuple(self.state[key].shape)}, "
                    f"got {got}"
                )
        with torch.no_grad():
            for key in _STATE_KEYS:
                self.state[key].copy_(state[key])
