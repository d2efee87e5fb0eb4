"""Seeded streams: one per purpose, reproducible, never shared between purposes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorew2.streams import PURPOSES, numpy_rng, stream_seed, torch_generator


def test_streams_are_reproducible_and_distinct() -> None:
    seeds = {p: stream_seed(7, p) for p in PURPOSES}
    assert len(set(seeds.values())) == len(PURPOSES)
    assert seeds == {p: stream_seed(7, p) for p in PURPOSES}
    assert stream_seed(8, "sampler") != seeds["sampler"]
    a = torch.randn(5, generator=torch_generator(7, "sampler"))
    assert torch.equal(a, torch.randn(5, generator=torch_generator(7, "sampler")))
    b = torch.randn(5, generator=torch_generator(7, "losses"))
    assert not torch.equal(a, b)
    x = numpy_rng(7, "reference").permutation(100)
    assert (x == numpy_rng(7, "reference").permutation(100)).all()
    assert not (x == numpy_rng(7, "path_starts").permutation(100)).all()


def test_training_stream_is_the_seed_sequence_child() -> None:
    ss = np.random.SeedSequence(entropy=3, spawn_key=(1,))
    assert stream_seed(3, "training") == int(ss.generate_state(1, dtype=np.uint64)[0])


def test_unknown_purpose() -> None:
    with pytest.raises(ValueError, match="unknown stream 'noise'"):
        stream_seed(0, "noise")
