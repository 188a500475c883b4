"""The Gradio demo of arasfsr: `build_demo()` in demo.ui; each other module does one thing.

    ui          the page and its events (Gradio only here)
    face        face mode             photo       whole-photo mode (calls arasfsr.restore)
    robustness  the input-size view   zoom        close-ups
    images      reading uploads       sizes       typed numbers -> arasfsr.inference.output_size
    models      choices, cache, card  limits      what this server accepts
    jobs        progress, Stop, memory            outputs     result files
    errors      InputError, quote     examples    example images from installed packages

Importing this package loads no model and starts nothing; `python app.py` at the repository root serves it.
"""
