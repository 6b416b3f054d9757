"""Streamlit glue shared by the pages: the settings form, the live runner, result display."""
