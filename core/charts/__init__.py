"""Chart builders: a tidy DataFrame in, an altair chart out. No Streamlit here.

Every builder colours a norm the same way (``NORM_COLORS``) and names it with ``NORM_LABELS``, so
"red is naive BatchNorm" learned on one page holds on every page, in exported charts too. Data
helpers that shape a frame for a chart (smoothing, thinning, seed bands, gaps) are pure functions
here as well, so the tests can check the numbers behind a chart and not only its spec.

The builders live in rooms by what they draw (base, curves, sweeps, tokens, probes); this package
gives them all under one name, so a page says ``charts.loss_curves(...)``.
"""

from core.charts.base import *  # noqa: F403
from core.charts.curves import *  # noqa: F403
from core.charts.probes import *  # noqa: F403
from core.charts.sweeps import *  # noqa: F403
from core.charts.tokens import *  # noqa: F403
