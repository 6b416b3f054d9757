"""The project's computation, no Streamlit here, in rooms by job: settings/ (what a run is: its
settings and the norm and task records, no torch), engine/ (norm layers, model, batches, trainer,
metrics), studies/ (each page's experiment and its probes, sweeps, shared jobs, the tour, the
reproducibility contract), charts/ (altair builders); cli and precompute are its commands.

Importing ``core`` (or its pure modules: settings/, charts' labels) does not import torch, so the
app can draw a page's heading and text before the engine has loaded. torch's thread settings are
applied by ``core.engine.torch_threads``, which every module that computes with torch imports first.
"""
