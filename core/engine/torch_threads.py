"""torch's thread settings, applied once per process by the first core module that uses torch.

One intra-op thread: the models are tiny, so their ops gain little from splitting, and several
training runs share a process (the paired models of a run step concurrently, and a hosted app
serves many visitors), where split ops oversubscribe the cores and every run slows down many
times over. Parallelism comes from running models and visitors side by side instead.
``BNLN_TORCH_THREADS=N`` overrides the intra-op count. torch allows the inter-op count to be set
only once per process, and the intra-op count is process-wide: so it is done here, at import,
never in a page script.
"""

import os

import torch

torch.set_num_threads(int(os.environ.get("BNLN_TORCH_THREADS", "1")))
try:
    torch.set_num_interop_threads(1)  # we never use inter-op parallelism (no torch.jit.fork)
except RuntimeError:  # already set, or parallel work already ran in this process: keep it
    pass
