"""The studies built on the engine: each page's experiment (one record each), the probes and
analyses behind its charts, sweeps and their executors, the shared jobs, the guided tour's
scenarios and the reproducibility contract. No Streamlit here.
"""
