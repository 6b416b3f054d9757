"""Core engine: tasks, norms, tiny Transformer, paired trainer, metrics. No Streamlit here.

Importing ``core`` (or its pure modules: config, params, charts' labels) does not import torch, so
the app can draw a page's heading and text before the engine has loaded. torch's thread settings
are applied by ``core.torch_threads``, which every module that computes with torch imports first.
"""
