"""The arasfsr demo: `python app.py` serves it on 0.0.0.0:7860 ($PORT or $GRADIO_SERVER_PORT to change).

This is the file a Spaces-style host runs. It only builds the page (demo/ui.py) and launches it; the
shipped weights in weights/ are loaded on start, nothing is downloaded.
"""
import os

# Before gradio is imported: no telemetry look-ups, no Hugging Face Hub retries when offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    try:
        import gradio  # noqa: F401 (checked here so that a missing extra is one clear line)
    except ImportError:
        raise SystemExit("the demo needs Gradio: pip install -r requirements.txt (or pip install 'arasfsr[app]')")
    from arasfsr.threads import configure_threads
    from demo.ui import LAUNCH_KWARGS, build_demo

    # torch threads: the CPUs this process may use (OMP_NUM_THREADS wins when set); on a busy
    # host `render` spreads the decoder over single-threaded workers, so no smaller count is needed
    print(f"arasfsr demo: {configure_threads()} torch thread(s)")

    port = int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    host = os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0")
    build_demo().launch(server_name=host, server_port=port, **LAUNCH_KWARGS)


if __name__ == "__main__":
    main()
