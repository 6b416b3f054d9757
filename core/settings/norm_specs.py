"""The norms: one record each, in one registry that everything reads (the config's checks, the
forms' pickers, chart colours and legends, the translations, the CLI's help, the layers' factory
``core.engine.norms.make_norm``, the trainer's metrics and passes, the tests). Pure Python, no torch: the
layers themselves are in core/engine/norms.py, which builds them from these records; this module imports
nothing of them.

A new norm is a class in core/engine/norms.py and a record here; nothing else changes.

What a norm depends on decides what is measured for it:

* ``batch_in_training``: its training-mode forward (or its backward) uses statistics of the batch.
  Such a model gets a held-out score with the batch's statistics beside the eval-mode one (the
  train/inference gap), and its layers are told to normalise as in training in the probes
  (``use_batch_stats``). A per-token norm computes the same in both modes, so it is scored once.
* ``running``: it keeps running statistics that inference uses.
* ``mean_var``: its layers expose the batch's mean and variance against the running ones
  (``last_stats``: the PowerNorm distances and TID of core/engine/metrics.py).
* ``stacks``: its layers can normalise several stacked batches each with its own statistics in one
  forward (``groups``), which makes the batch-statistics score faster; without it the score runs
  batch by batch.
* ``clips``: its layers clip a correction of the batch statistics (Batch Renormalization's r and d)
  and report the share of clipped channels (``last_clipped``): the per-step metric renorm_clipped.
* ``channels_multiple``: d_model must be a multiple of it (GroupNorm's groups, PowerNorm's).

What these flags promise of a layer is declared at the end of this file (``NormLayer`` and the
protocols after it) and checked for every norm by tests/test_norms.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from core.settings.records import by_key

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class NormSpec:
    key: str  # the config's, the URL's and the CLI's name
    labels: Mapping[str, str]  # {"en", "zh"}: legends, pickers
    short: Mapping[str, str]  # {"en", "zh"}: narrow places (metric labels)
    color: str  # the same on every chart of every page
    layer: str  # the class in core/engine/norms.py
    options: Mapping[str, Any] = field(default_factory=dict)  # its constructor's options beyond C and eps
    takes_momentum: bool = False  # it takes the config's bn_momentum
    batch_in_training: bool = False
    running: bool = False
    mean_var: bool = False
    stacks: bool = False
    clips: bool = False
    channels_multiple: int = 1


# What a norm declares that trains with the batch's mean and variance and keeps running ones for
# inference (BatchNorm, masked or not, and Batch Renormalization).
BATCH_STATISTICS = {"takes_momentum": True, "batch_in_training": True, "running": True, "mean_var": True}


def batch_norm(key: str, labels: dict, short: dict, color: str, masked: bool) -> NormSpec:
    """A BatchNorm record: pads in its statistics or masked out; a batch stacked G times is normalised
    per stack (``stacks``)."""
    return NormSpec(key, labels, short, color, "BatchNorm", {"masked": masked}, stacks=True, **BATCH_STATISTICS)


NORM_SPECS: dict[str, NormSpec] = by_key(
    NormSpec(
        "ln",
        {"en": "LayerNorm", "zh": "LayerNorm"},
        {"en": "LayerNorm", "zh": "LayerNorm"},
        "#4c78a8",  # blue: the control every chart compares with
        "LayerNorm",
    ),
    batch_norm(
        "bn",
        {"en": "BatchNorm (naive, pads counted)", "zh": "BatchNorm（朴素，计入 pad）"},
        {"en": "naive BN", "zh": "朴素 BN"},
        "#e45756",  # red, and the BatchNorm variants around it
        masked=False,
    ),
    batch_norm(
        "masked_bn",
        {"en": "BatchNorm (pads masked)", "zh": "BatchNorm（mask 掉 pad）"},
        {"en": "masked BN", "zh": "masked BN"},
        "#f58518",
        masked=True,
    ),
    NormSpec(
        "rms",
        {"en": "RMSNorm", "zh": "RMSNorm"},
        {"en": "RMSNorm", "zh": "RMSNorm"},
        "#54a24b",  # green: LayerNorm's cousin
        "RMSNorm",
    ),
    NormSpec(
        "powernorm",
        {"en": "PowerNorm (running quadratic mean)", "zh": "PowerNorm（滑动二次均值）"},
        {"en": "PowerNorm", "zh": "PowerNorm"},
        "#ff9da6",  # pink: a fix of BatchNorm, near its red
        "PowerNorm",
        # the authors' setups scale by the RMS over one group per attention head (4 here); 50 of the
        # default 300 steps with batch statistics (theirs: 8,000-10,000 updates)
        {"group_num": 4, "warmup": 50},
        batch_in_training=True,  # during the warm-up, and in its backward always
        running=True,
        channels_multiple=4,
    ),
    NormSpec(
        "batchrenorm",
        {"en": "Batch Renormalization (pads masked)", "zh": "Batch Renormalization（mask 掉 pad）"},
        {"en": "BatchRenorm", "zh": "BatchRenorm"},
        "#b279a2",  # purple
        "BatchRenorm",
        {"warmup": 50, "ramp": 100},  # plain BN for 50 updates, then r and d relaxed to 3 and 5 over 100
        **BATCH_STATISTICS,
        clips=True,
    ),
    NormSpec(
        "groupnorm",
        {"en": "GroupNorm (8 groups)", "zh": "GroupNorm（8 组）"},
        {"en": "GroupNorm", "zh": "GroupNorm"},
        "#72b7b2",  # teal: a per-token norm, LayerNorm's blue-green family
        "GroupNorm",
        {"num_groups": 8},
        channels_multiple=8,
    ),
    NormSpec(
        "none",
        {"en": "no norm", "zh": "不归一化"},
        {"en": "no norm", "zh": "不归一化"},
        "#9d755d",
        "Identity",
    ),
)


# ---------------------------------------------------------------- the contract the measurements rely on
# core/engine/metrics.py, core/studies/analysis.py, core/studies/leak.py and core/studies/deploy.py set and read these attributes on a
# model's norm layers (core/engine/norms.py); which of them a layer has follows from its norm's record below,
# and tests/test_norms.py checks every layer against its record. Annotations only: no torch imported.
@runtime_checkable
class NormLayer(Protocol):
    """Every layer that normalises: ``forward(x, valid)``; with ``capture`` set it keeps its last
    input and normalised value (before gain and bias) in ``captured`` (the per-token statistics)."""

    capture: bool
    captured: tuple[torch.Tensor, torch.Tensor] | None

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class BatchStatsLayer(NormLayer, Protocol):
    """A norm whose training forward uses the batch (record: ``batch_in_training``): in eval mode
    with ``use_batch_stats`` set it normalises as its next training forward would, changing no state."""

    use_batch_stats: bool


@runtime_checkable
class StackedLayer(BatchStatsLayer, Protocol):
    """Record ``stacks``: with ``groups = (G, within)`` set, G stacked batches are each normalised
    with their own statistics in one forward."""

    groups: tuple[int, torch.Tensor] | None


@runtime_checkable
class MeanVarLayer(BatchStatsLayer, Protocol):
    """Record ``mean_var``: ``last_stats`` = (mu_B, 1/sqrt(var_B + eps), running mean, running var)
    of the last batch-statistics forward, and its ``eps``."""

    last_stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None
    eps: float


@runtime_checkable
class ClippingLayer(BatchStatsLayer, Protocol):
    """Record ``clips``: ``last_clipped``, the share of channels whose correction was clipped."""

    last_clipped: torch.Tensor | None
