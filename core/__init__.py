"""Core engine: tasks, norms, tiny Transformer, paired trainer, metrics. No Streamlit here."""
