"""The engine the pages need, imported in one place: torch (through core), pandas and altair.

The entry script imports this module under a spinner after drawing the page's heading, so a
fresh server's first visitor sees text at once instead of a blank page while these load."""

from core.studies import experiments, presets  # noqa: F401  (torch, the models, the trainer)
from ui import runner, share, show  # noqa: F401  (pandas, altair, the page glue)
