"""What a run is, without torch: its settings (RunConfig), the records they name (one per norm,
one per task) and how settings travel in a URL (params). No Streamlit here.
"""
