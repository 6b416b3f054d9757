"""The app's pages in menu order, with the one line the overview says about each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    blurb: str  # what the experiment shows, in one line


PAGES = [
    PageInfo(
        "app_pages/overview.py", "Overview", ":material/home:", "What BatchNorm and LayerNorm pool, on a real batch."
    ),
    PageInfo(
        "app_pages/tour.py",
        "Guided tour",
        ":material/map:",
        "The story in six one-click scenarios, from the control task where BatchNorm is fine to where it breaks.",
    ),
    PageInfo(
        "app_pages/live.py",
        "Live comparison",
        ":material/monitoring:",
        "Train the norms side by side from the same init on the same batches; watch loss and gradients stream.",
    ),
    PageInfo(
        "app_pages/batch_size.py",
        "Batch size",
        ":material/stacked_line_chart:",
        "Noisy batch statistics: BatchNorm's gap to LayerNorm widens as the batch shrinks (the Group Norm figure).",
    ),
    PageInfo(
        "app_pages/padding.py",
        "Padding and lengths",
        ":material/view_column:",
        "Pad contamination: naive BatchNorm counts pads; masking them or bucketing by length removes the pads, "
        "not every problem; LayerNorm never sees them.",
    ),
    PageInfo(
        "app_pages/per_token.py",
        "Per-token statistics",
        ":material/grid_on:",
        "After LayerNorm every real token has mean 0 and std 1; after BatchNorm it does not, and pads pull the statistics.",
    ),
    PageInfo(
        "app_pages/train_vs_inference.py",
        "Train vs inference",
        ":material/compare_arrows:",
        "Batch statistics in training, running averages at inference: the gap, and one sentence changing with its batch.",
    ),
    PageInfo(
        "app_pages/gradients.py",
        "Gradients",
        ":material/insights:",
        "Gradient norms per block over training, and per layer at initialization for Pre- vs Post-norm.",
    ),
]
