"""The guided tour: named scenarios that tell the story in order, one click each.

Each scenario is a page, the config its form should hold, the page's other settings, and two
lines saying what to look at. The tour leads with the failures that are large at this scale (BatchNorm
reading its batch, the lengths and neighbours of its sentences above all, and collapsing when deployed;
a sentence depending on its batch, on real text), then pads, then the small loss penalty of small batches, the control task where BatchNorm is
fine, and Post-norm's gradients. Each uses the task and settings where the measurements (docs/findings.md)
show its effect most clearly. ``python -m core.precompute`` stores each scenario's
results (``data/precomputed/``), so a workshop on a slow machine shows them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.settings.config import NORMS, RunConfig
from core.studies.experiments import SETUPS


@dataclass(frozen=True)
class Preset:
    id: str  # in the URL: ?scenario=<id>
    title: str
    page: str  # a key of core.studies.experiments.SETUPS
    config: RunConfig  # what the page's form holds: the page's base with the form's settings changed
    look: str  # what to look at, two sentences
    extras: dict[str, Any] = field(default_factory=dict)  # the page's other settings that change the numbers
    view: dict[str, Any] = field(default_factory=dict)  # display settings (smoothing, log axis, ...)

    @property
    def settings(self) -> dict[str, Any]:
        """The page's extra settings: its defaults with this scenario's changes."""
        return {**SETUPS[self.page].extras, **self.extras}


def _base(page: str, **changes) -> RunConfig:
    """The page's base with ``changes``, norms in the order the form gives them (core.settings.config.NORMS)."""
    cfg = SETUPS[page].base.replace(**changes)
    return cfg.replace(norms=tuple(n for n in NORMS if n in cfg.norms))


PRESETS: list[Preset] = [
    Preset(
        "reads_future",
        "BatchNorm reads the batch",
        "train_vs_inference",
        _base("train_vs_inference", batch_size=8, batching="bucketed", steps=300),
        "Bucketed batches: a sentence's predictions move far more when its length or another sentence changes than "
        "when its own later tokens do (the leak chart). Deployed, BatchNorm's loss rises from 1.07 to 4.65, on every "
        "kind of target; one set of statistics per padded length gets 1.09: the statistics carry the length.",
    ),
    Preset(
        "line_in_batches",
        "Real text: a line depends on its batch",
        "train_vs_inference",
        _base("train_vs_inference", task="shakespeare", lengths="natural", steps=300),
        "Shakespeare's lines, two to a batch. Under BatchNorm one held-out line gets other predictions in every batch "
        "it is put in, and its length, its neighbour and its later characters all move its predictions; under "
        "LayerNorm none does.",
    ),
    Preset(
        "add_padding",
        "Add padding",
        "per_token",
        _base("per_token", norms=("bn", "ln"), lengths="longtail", batch_size=8, steps=300),
        "Long-tailed lengths: more than half of each batch is pads. After LayerNorm every real token sits at mean 0, "
        "std 1; after naive BatchNorm they do not, because the pads (×) pulled the shared statistics.",
    ),
    Preset(
        "mask_pads",
        "Mask the pads",
        "padding",
        _base("padding", batch_size=2, steps=300),
        "Masked BatchNorm leaves the pads out: in the probe its outputs no longer move when the batch gets more pads. "
        "Yet its held-out loss is no better than naive BatchNorm's: masking fixes only the pad part.",
        extras={"lengths": ("uniform", "longtail"), "batching": ("random",), "seeds": 2},
    ),
    Preset(
        "can_bn_be_saved",
        "Can BatchNorm be saved?",
        "fixes",
        _base("fixes", steps=300),
        "In the decoder (left), PowerNorm and GroupNorm match LayerNorm and, once warm, no fix's forward depends on "
        "the batch; PowerNorm's and Batch Renormalization's gradients still do (the gradient chart). In the encoder "
        "(right), the papers' setting, BatchNorm is no worse than LayerNorm at this scale.",
        extras={"seeds": 2},
    ),
    Preset(
        "shrink_batch",
        "Shrink the batch",
        "batch_size",
        _base("batch_size", steps=300),
        "The loss itself: BatchNorm's gap to LayerNorm is near zero at batch 32 and grows as the batch shrinks to 2, "
        "fewer sentences per statistic. At this scale it is small, a few hundredths of a nat, far less than the "
        "failures before.",
    ),
    Preset(
        "comparable",
        "BatchNorm works on comparable data",
        "batch_size",
        _base("batch_size", task="control", lengths="fixed", steps=300),
        "The control task: fixed lengths, no pads, positions nearly alike (2% of a channel's variance lies between "
        "positions, 84% on the Tang poems). BatchNorm's gap to LayerNorm stays at zero, even at batch 2: pooling "
        "comparable values is fine.",
        extras={"sizes": (2, 8, 32)},
    ),
    Preset(
        "post_ln_init",
        "Post-LN gradients at init",
        "gradients",
        _base("gradients", norms=("ln",), placement="post"),
        "Look at the last chart, the gradients at step 0. Pre-norm gives every block a gradient of similar size; "
        "under Post-norm blocks 1-5 get about a tenth of what the embeddings and the head get: the uneven start "
        "that makes it need warm-up.",
    ),
]

BY_ID = {p.id: p for p in PRESETS}
