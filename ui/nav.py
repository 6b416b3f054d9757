"""The app's pages, in menu order: one record per page, which everything else reads (the entry
script's menu and headings, the overview's list, the tests).

Nothing here imports torch: the entry script draws a page's heading and its introduction from
these records before the engine has loaded, so the first visitor of a fresh server sees them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.i18n import t


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str  # in the menu
    icon: str
    blurb: str  # what the experiment shows, in one line (the overview's list)
    intro: str  # under the page's heading: what the page does (markdown)
    heading: str = ""  # the page's heading, if not its title
    charts: int = 0  # charts it draws once it shows results (after its default run, if it has a Run form)

    @property
    def name(self) -> str:
        """The page's name in URLs and keys: its file's stem (``live`` for app_pages/live.py)."""
        return Path(self.path).stem

    def header(self):
        """The page's heading and introduction: text only, drawn before the engine is needed."""
        st.title(t(self.heading or self.title))
        if self.path == OVERVIEW:  # the principle, at length
            st.markdown(t(self.intro))
        else:
            st.caption(t(self.intro))


OVERVIEW = "app_pages/overview.py"

PAGES = [
    PageInfo(
        OVERVIEW,
        "Overview",
        ":material/home:",
        "What BatchNorm and LayerNorm pool, on a real batch.",
        "A norm layer subtracts a mean and divides by a standard deviation. The whole question is\n"
        "**which values share that mean and variance**. Take the activations of a batch as a\n"
        "B × T × C block: B sequences, T positions (short sentences padded to the longest), C channels.\n"
        "\n"
        "* **BatchNorm** pools **one channel** over **every sequence and every position** of the batch, pads included.\n"
        "* **Masked BatchNorm** does the same over the **real tokens only**.\n"
        "* **LayerNorm** pools **all channels of one token**, and nothing else.\n"
        "\n"
        "The principle: *only comparable values should share statistics.* In images, one channel at\n"
        "every pixel of every image measures the same kind of thing, and BatchNorm works. In padded\n"
        "text, one channel lives in different ranges at different positions of a sentence (measured below), pads\n"
        "are not tokens, and a batch of a few sentences is a noisy sample of them. So BatchNorm's statistics\n"
        "depend on which positions, and so which lengths, a batch holds, and a model trained with them learns\n"
        "to read its batch. LayerNorm sidesteps all of it.",
        heading="BatchNorm vs LayerNorm in Transformers",
        charts=3,
    ),
    PageInfo(
        "app_pages/tour.py",
        "Guided tour",
        ":material/map:",
        "The story in eight one-click scenarios: first the large failures (BatchNorm reading its batch and "
        "collapsing when deployed, a sentence depending on its batch), then pads, the papers' fixes, small "
        "batches, the control task, and Post-norm.",
        "Eight scenarios that tell the story in order. Each opens its page with the settings filled in and its "
        "results shown at once (precomputed, and labelled so; Re-run live trains them in front of you). "
        "For a projector, switch on the presenter view in the sidebar, or add ?present=1 to the link.",
        charts=0,
    ),
    PageInfo(
        "app_pages/live.py",
        "Live comparison",
        ":material/monitoring:",
        "Train the norms side by side from the same init on the same batches; watch loss and gradients stream.",
        "Pick the norms and the setting, press Run, and watch them train in lockstep: same initial "
        "weights, same batches, same order. Stop keeps what has been trained so far.",
        charts=3,
    ),
    PageInfo(
        "app_pages/batch_size.py",
        "Batch size",
        ":material/stacked_line_chart:",
        "Noisy batch statistics: BatchNorm's gap to LayerNorm widens as the batch shrinks (the Group Norm figure).",
        "The Group Norm figure, live: final held-out loss against batch size for each norm. The default sweep "
        "takes well under a minute; raise steps or seeds for smoother curves.",
        charts=2,
    ),
    PageInfo(
        "app_pages/padding.py",
        "Padding and lengths",
        ":material/view_column:",
        "Pad contamination: naive BatchNorm counts pads; masking them or bucketing by length removes the pads, "
        "not every problem; LayerNorm never sees them.",
        "Pads are not tokens, yet naive BatchNorm counts them in every channel's mean and variance. Sweep the "
        "length distribution and batching, then see the pad-length probe. The default sweep takes well under a "
        "minute.",
        charts=3,
    ),
    PageInfo(
        "app_pages/per_token.py",
        "Per-token statistics",
        ":material/grid_on:",
        "After LayerNorm every real token has mean 0 and std 1; after BatchNorm it does not, and pads pull the statistics.",
        "Train a run, then pick a norm layer: each token's mean and standard deviation over its channels, "
        "before and after the norm, for one held-out batch of the training size (batch statistics).",
        charts=3,
    ),
    PageInfo(
        "app_pages/train_vs_inference.py",
        "Train vs inference",
        ":material/compare_arrows:",
        "Batch statistics in training, running averages at inference: the gap, what leaks into a sentence's "
        "predictions, and which statistics could be deployed.",
        "BatchNorm trains with the statistics of the current batch and serves with running averages. "
        "LayerNorm computes the same thing in both modes.",
        charts=7,
    ),
    PageInfo(
        "app_pages/fixes.py",
        "Can BatchNorm be saved?",
        ":material/healing:",
        "The papers' fixes (PowerNorm, Batch Renormalization, GroupNorm) against each failure, in a decoder and in "
        "the encoder setting where they were studied.",
        "Three answers from the literature: PowerNorm (Shen et al. 2020) normalises by a running quadratic mean "
        "instead of the batch's statistics, Batch Renormalization (Ioffe 2017) corrects the batch's statistics "
        "toward the running ones, GroupNorm (Wu & He 2018) normalises each token over groups of channels. Trained "
        "side by side with LayerNorm and BatchNorm, causal (a decoder) and bidirectional (an encoder, where the "
        "papers studied BatchNorm).",
        charts=4,
    ),
    PageInfo(
        "app_pages/gradients.py",
        "Gradients",
        ":material/insights:",
        "Gradient norms per block over training, and per layer at initialization for Pre- vs Post-norm.",
        "Gradient norms over training, per block, and at initialization for Pre- vs Post-norm.",
        charts=3,
    ),
]
