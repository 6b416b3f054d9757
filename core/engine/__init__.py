"""The engine: the norm layers, the tiny Transformer, the batches it trains on (corpora, uploads),
the paired trainer, the one reporter it tells and the metrics. No Streamlit here.
"""
