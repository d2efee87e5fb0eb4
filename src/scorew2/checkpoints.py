"""The checkpoints file of a training job, and reading one run group's models back from it.

A training job trains every regulariser's seeds of one (experiment, data set, T) as one
batched ScoreNet (``scorew2.runs.batch_layout``) and writes, for every checkpoint epoch, the
batched state of all its models. A run group reads the models of its own regulariser: K
checkpoints of S seeds become one eval-mode ScoreNet of K x S models, model k * S + s being
seed s at checkpoint k.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from scorew2.io import load_torch, save_torch
from scorew2.model import (
    ScoreNet,
    model_regularizers,
    regularizer_slices,
    regularizer_state,
    stack_states,
)
from scorew2.train import TrainResult

__all__ = ["FILE_KEYS", "Checkpoints", "load_checkpoints", "save_checkpoints"]

FILE_KEYS = ("epochs", "states", "seeds", "regularizer", "n_steps", "dim", "hidden")


@dataclass(frozen=True)
class Checkpoints:
    """The checkpoints of a run group as one batched model of K x S models.

    Attributes
    ----------
    model : ScoreNet
        Eval mode; model k * S + s is seed ``seeds[s]`` at checkpoint k.
    seeds, epochs : np.ndarray of shape (K * S,)
        The seed and the checkpoint epoch of each model.
    """

    model: ScoreNet
    seeds: np.ndarray
    epochs: np.ndarray


def save_checkpoints(result: TrainResult, path: str | os.PathLike[str]) -> None:
    """Write a training job's checkpoints (atomically).

    Every model's weights at every checkpoint epoch; ``regularizer`` is one name, or one per
    model for a mixed batch.
    """
    save_torch(
        {
            "epochs": list(result.epochs),
            "states": result.states,
            "seeds": [int(s) for s in result.seeds],
            "regularizer": result.regularizer,
            "n_steps": result.n_steps,
            "dim": result.dim,
            "hidden": result.config["hidden"],
            "loss_history": result.loss_history,
        },
        path,
    )


def load_checkpoints(
    path: str | os.PathLike[str], which: str = "all", regularizer: str | None = None
) -> Checkpoints:
    """Read the models of one regulariser from a checkpoints file.

    Parameters
    ----------
    path : path-like
        A file written by ``save_checkpoints``.
    which : {"all", "final"}
        Every checkpoint, or the last one only.
    regularizer : str, optional
        Whose models to read; may be omitted only for a file of one regulariser.

    Raises
    ------
    ValueError
        The file holds several regularisers and none is named, or its states do not fit the
        network (the message names the file).
    """
    ck = load_torch(path, required=FILE_KEYS)
    epochs = [int(e) for e in ck["epochs"]]
    states = list(ck["states"])
    if which == "final":
        epochs, states = epochs[-1:], states[-1:]
    elif which != "all":
        raise ValueError(f"which: expected 'all' or 'final', got {which!r}")
    seeds = [int(s) for s in ck["seeds"]]
    regs = model_regularizers(ck["regularizer"], len(seeds))
    if regularizer is None:
        if len(set(regs)) > 1:
            raise ValueError(
                f"{path}: holds the models of several regularizers {sorted(set(regs))}; "
                "name one (regularizer=...)"
            )
        regularizer = regs[0]
    try:
        states = [regularizer_state(st, regs, regularizer) for st in states]
        seeds = seeds[regularizer_slices(regs)[regularizer]]
        model = ScoreNet.from_state(
            stack_states(states), ck["n_steps"], regularizer, dim=ck["dim"], hidden=ck["hidden"]
        )
    except ValueError as err:
        raise ValueError(f"{path}: checkpoints do not fit the network ({err})") from err
    model.eval()
    S = len(seeds)
    return Checkpoints(
        model=model,
        seeds=np.tile(np.asarray(seeds), len(epochs)),
        epochs=np.repeat(np.asarray(epochs), S),
    )
