"""The Gradio demo of arasfsr: `build_demo()` in demo.ui, the logic in demo.handlers and demo.photo.

Importing this package loads no model and starts nothing; `python app.py` at the repository root serves it.
"""
