"""The guided tour: named scenarios that tell the story in order, one click each.

Each scenario is a page, the config its form should hold, the page's other settings, and two
lines saying what to look at. The configs are the ones where the README's measurements show the
effect clearly (batch 2, long-tailed lengths, bucketing, running vs batch statistics) and, first,
the control task where BatchNorm is fine. ``python -m core.precompute`` stores each scenario's
results (``data/precomputed/``), so a workshop on a slow machine shows them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config import NORMS, RunConfig
from core.experiments import SETUPS


@dataclass(frozen=True)
class Preset:
    id: str  # in the URL: ?scenario=<id>
    title: str
    page: str  # a key of core.experiments.SETUPS
    config: RunConfig  # what the page's form holds: the page's base with the form's settings changed
    look: str  # what to look at, two sentences
    extras: dict[str, Any] = field(default_factory=dict)  # the page's other settings that change the numbers
    view: dict[str, Any] = field(default_factory=dict)  # display settings (smoothing, log axis, ...)

    @property
    def settings(self) -> dict[str, Any]:
        """The page's extra settings: its defaults with this scenario's changes."""
        return {**SETUPS[self.page].extras, **self.extras}


def _base(page: str, **changes) -> RunConfig:
    """The page's base with ``changes``, norms in the order the form gives them (core.config.NORMS)."""
    cfg = SETUPS[page].base.replace(**changes)
    return cfg.replace(norms=tuple(n for n in NORMS if n in cfg.norms))


PRESETS: list[Preset] = [
    Preset(
        "comparable",
        "BatchNorm works on comparable data",
        "batch_size",
        _base("batch_size", task="control", lengths="fixed", steps=300),
        "The control task: fixed-length sequences, no pads, every position alike, as pixels are in an image. "
        "BatchNorm's gap to LayerNorm stays at zero, even at batch 2: pooling comparable values is fine.",
        extras={"sizes": (2, 8, 32)},
    ),
    Preset(
        "shrink_batch",
        "Shrink the batch",
        "batch_size",
        _base("batch_size", steps=300),
        "Now padded sentences of varying length. BatchNorm's gap to LayerNorm is near zero at batch 32 and "
        "grows as the batch shrinks to 2: fewer sentences per statistic, noisier normalisation.",
    ),
    Preset(
        "add_padding",
        "Add padding",
        "per_token",
        _base("per_token", norms=("bn", "ln"), lengths="longtail", batch_size=8, steps=300),
        "Long-tailed lengths: more than half of each batch is pads. After LayerNorm every real token sits at "
        "mean 0, std 1; after naive BatchNorm they do not, because the pads (×) pulled the shared statistics.",
    ),
    Preset(
        "mask_pads",
        "Mask the pads",
        "padding",
        _base("padding", batch_size=2, steps=300),
        "Masked BatchNorm leaves the pads out: in the probe its outputs no longer move when the batch gets more "
        "pads. Yet its held-out loss is no better than naive BatchNorm's: masking fixes only the pad part.",
        extras={"lengths": ("uniform", "longtail"), "batching": ("random",), "seeds": 2},
    ),
    Preset(
        "train_vs_inference",
        "Train vs inference",
        "train_vs_inference",
        _base("train_vs_inference", batch_size=8, batching="bucketed", steps=300),
        "Bucketed batches hold sentences of one length, so BatchNorm's batch statistics tell the model where a "
        "sentence ends. With them (dotted) its loss is low; with the running averages used at inference "
        "(dashed) it is far worse.",
    ),
    Preset(
        "post_ln_init",
        "Post-LN gradients at init",
        "gradients",
        _base("gradients", norms=("ln",), placement="post"),
        "Look at the last chart, the gradients at step 0. Pre-norm gives every block a gradient of similar size; "
        "under Post-norm the blocks get a tenth of what the embeddings and the head get: the uneven start that "
        "makes it need warm-up.",
    ),
]

BY_ID = {p.id: p for p in PRESETS}
