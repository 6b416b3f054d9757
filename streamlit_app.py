import streamlit as st

st.set_page_config(page_title="BatchNorm vs LayerNorm, live", layout="wide")
st.title("BatchNorm vs LayerNorm in Transformers")
st.write("The dashboard is being built; `python -m core compare --help` runs the engine today.")
