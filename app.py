"""Gradio demo (placeholder until the demo lands): `python app.py`."""
raise SystemExit("the demo is not implemented yet")
