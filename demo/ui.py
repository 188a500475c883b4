"""The Gradio page: `build_demo()` lays it out and wires it to `demo.handlers` and `demo.photo`.

Public API endpoints (see the README): /upscale (face mode), /upscale_photo (whole photo),
/robustness. The other events only update the page and are private.
"""
from __future__ import annotations

from contextlib import contextmanager

import gradio as gr

from . import handlers, photo
from .examples import prepare_examples
from .handlers import InputError

QUEUE_SIZE = 16          # waiting requests; one more is refused with "queue full"
CONCURRENCY = 1          # model runs at once, all tabs together: bounds the server's memory
LAUNCH_KWARGS = dict(max_file_size=handlers.MAX_UPLOAD_BYTES, ssr_mode=False)
# Page updates: private, never waiting behind a model run (own unlimited concurrency group). They go
# through the queue all the same, since only queued events show a gr.Error as a toast.
PRIVATE = dict(api_visibility="private", show_progress="hidden", concurrency_id="page", concurrency_limit=None)
HEAVY = dict(concurrency_id="model", concurrency_limit=CONCURRENCY)


def unchecked(component):
    """Let an input hand its raw value to the event function, which does every check itself.

    gr.Image opens each upload with Pillow before the function runs, so a non-image or a
    decompression bomb fails there with a bare "Error"; gr.Slider refuses out-of-range numbers with
    its own words and lets NaN through. With this, `demo.handlers` refuses each bad input with its
    reason. (The override is set on the instance: a subclass would make Gradio write a .pyi stub
    next to this file at import.)
    """
    original = component.preprocess

    def preprocess(payload):
        if isinstance(component, gr.Image):
            if payload is None or payload.path is None:  # nothing, or a pasted image sent as a data URL
                return original(payload)
            return str(payload.path)  # Gradio has checked that the path is one of its uploads
        return payload

    component.preprocess = preprocess
    return component


@contextmanager
def refusals():
    """Turn an InputError into a gr.Error: the visitor sees the reason, the server carries on."""
    try:
        yield
    except InputError as error:
        raise gr.Error(str(error), print_exception=False) from None  # user text in it is made safe by quote


def _progress(tracker: gr.Progress):
    return lambda fraction, desc: tracker(min(max(fraction, 0.0), 1.0), desc=desc)


# ----------------------------------------------------------------------------- event functions
def run_upscale(image, scale=4.0, model=handlers.DEFAULT_MODEL, resize_by="scale", width=256, height=256,
                sample=False, seed=0, progress=gr.Progress()):
    """Super-resolve a face. Returns (result PNG, bicubic PNG, (bicubic, result) for the slider,
    the download, a summary, the zoom view) and the zoom state."""
    with refusals():
        result = handlers.upscale_face(image, scale, model, resize_by, width, height, sample, seed,
                                       progress=_progress(progress))
        zoom = handlers.zoom_view(result.bicubic_path, result.result_path, labels=("Bicubic", model))
    result_path, bicubic_path = str(result.result_path), str(result.bicubic_path)
    state = {"bicubic": bicubic_path, "result": result_path, "model": model,
             "size": (result.width, result.height)}
    return result_path, bicubic_path, (bicubic_path, result_path), result_path, result.info, zoom, state


def move_zoom(state, event: gr.SelectData):
    """Centre the zoom view where the visitor clicked on the model's output."""
    if not state or not isinstance(event.index, (list, tuple)) or len(event.index) != 2:
        return gr.skip()
    width, height = state["size"]
    centre = (event.index[0] / width, event.index[1] / height)
    with refusals():
        return handlers.zoom_view(state["bicubic"], state["result"], centre, labels=("Bicubic", state["model"]))


def describe(image, resize_by, scale, width, height):
    with refusals():
        return handlers.describe_request(image, resize_by, scale, width, height)


def describe_photo(image, scale):
    with refusals():
        return handlers.describe_request(image, "scale", scale, photo=True)


def switch_resize(resize_by, image, scale, width, height):
    """Show the scale slider or the width/height boxes; prefill the boxes with the scale's size."""
    by_size = resize_by == "size"
    if by_size and image:
        try:
            info = handlers.probe_image(image)
            width, height = handlers.plan_size((info.width, info.height), "scale", scale, max_pixels=10 ** 12)
        except InputError:
            pass  # the size preview says what is wrong
    return gr.update(visible=not by_size), gr.update(visible=by_size), width, height


def run_photo(image, scale=2.0, model=handlers.DEFAULT_MODEL, progress=gr.Progress()):
    """Whole photo. Returns ((bicubic, result) for the slider, detected faces, report, download)."""
    with refusals():
        result = photo.enhance_photo(image, scale, model, progress=_progress(progress))
    result_path, bicubic_path = str(result.result_path), str(result.bicubic_path)
    return (bicubic_path, result_path), result.overview, result.report, result_path


def run_robustness(image, out_side=256, model=handlers.DEFAULT_MODEL, progress=gr.Progress()):
    """One face at 16, 32, 64 and 128 px, each super-resolved to out_side. Returns (sheet, table)."""
    with refusals():
        result = handlers.robustness(image, out_side, model, progress=_progress(progress))
    return result.sheet, result.table


# ----------------------------------------------------------------------------- layout
INTRO = """
# ARASFSR: face super-resolution at any scale
Upload a small face and enlarge it by any factor from 1 to 16 (2.5 and 3.7 work as well as 4), or to
any width and height. The model, ARASFSR ([Tsai et al., arXiv 2511.16341](https://arxiv.org/abs/2511.16341)),
is an implicit decoder in the LIIF family: it predicts the colour at any point of the face, so one
network serves every scale and input size. It was trained on small aligned faces (like the examples:
eyes at mid-height); for ordinary photos use the **Whole photo** tab. Runs on {device} with the weights
shipped in the repository; nothing leaves this server.
"""


def _missing_weights_banner() -> str:
    missing = [label for label, ok in handlers.available_models().items() if not ok]
    if not missing:
        return ""
    names = ", ".join(f"{label} (`{handlers.model_path(label).name}`)" for label in missing)
    return f"**Not installed on this server:** {names}. Choosing one shows an error; the others work."


def build_demo() -> gr.Blocks:
    """The whole page, queued (CONCURRENCY model runs at once, QUEUE_SIZE waiting), not launched."""
    examples = prepare_examples()
    models = list(handlers.MODELS)
    if handlers.available_models()["ARASFSR"]:
        handlers.get_model("ARASFSR")  # load the default now, so the first visitor does not wait
    device = "a GPU" if handlers.on_gpu() else "a CPU"

    with gr.Blocks(title="ARASFSR face super-resolution", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO.format(device=device))
        banner = _missing_weights_banner()
        if banner:
            gr.Markdown(banner, elem_id="missing-weights")

        with gr.Tab("Face", id="face"):
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    face_in = unchecked(gr.Image(label="Face", type="filepath", format="png", image_mode=None,
                                                 sources=["upload", "clipboard"], height=260, elem_id="face-input"))
                    resize_by = gr.Radio([("Scale factor", "scale"), ("Width x height", "size")], value="scale",
                                         label="Resize by", elem_id="resize-by")
                    scale = unchecked(gr.Slider(handlers.MIN_SCALE, handlers.MAX_SCALE, value=4.0, step=0.05,
                                                label="Scale (non-integer values are fine)", elem_id="scale"))
                    with gr.Row(visible=False) as size_row:
                        width = gr.Number(256, label="Target width (px)", precision=None, elem_id="target-width")
                        height = gr.Number(256, label="Target height (px)", precision=None, elem_id="target-height")
                    output_size = gr.Markdown("Upload an image to see the output size.", elem_id="output-size")
                    model = gr.Dropdown(models, value=handlers.DEFAULT_MODEL, label="Model", elem_id="model")
                    with gr.Accordion("LFE latent (ARASFSR only)", open=False):
                        sample = gr.Checkbox(False, label="Sample the latent with a seed (default: its mean, "
                                                          "deterministic)", elem_id="sample")
                        seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
                    run = gr.Button("Upscale", variant="primary", elem_id="run")
                    gr.Examples([[str(examples["grace_hopper_64"]), 4.0], [str(examples["astronaut_96"]), 2.5]],
                                inputs=[face_in, scale], label="Examples (public-domain portraits)")
                with gr.Column(scale=3, min_width=400):
                    compare = gr.ImageSlider(label="Bicubic | model (drag the handle)", type="filepath",
                                             format="png", max_height=420, elem_id="compare")
                    with gr.Row():
                        bicubic_out = gr.Image(label="Bicubic", type="filepath", format="png", image_mode=None,
                                               interactive=False, height=240, elem_id="bicubic")
                        result_out = gr.Image(label="Model (click to zoom there)", type="filepath", format="png",
                                              image_mode=None, interactive=False, height=240, elem_id="result")
                    zoom = gr.Image(label="Zoom", show_label=False, type="pil", format="png", interactive=False,
                                    elem_id="zoom")
                    info = gr.Markdown(label="Summary", elem_id="info")
                    download = gr.File(label="Download the full-resolution PNG", elem_id="download")
            zoom_state = gr.State(None)

        with gr.Tab("Whole photo", id="photo"):
            gr.Markdown(f"Every face is found (YuNet), aligned, super-resolved and blended back into the "
                        f"bicubic-upscaled photo under a feathered mask. Up to {photo.MAX_FACES} faces of at least "
                        f"{photo.MIN_FACE_SIDE} px, each at most {photo.MAX_FACE_OUTPUT_SIDE} px once enlarged; "
                        f"faces outside these bounds are listed with the reason and left bicubic. Beyond the "
                        f"paper, which handles aligned faces only.")
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    photo_in = unchecked(gr.Image(label="Photo", type="filepath", format="png", image_mode=None,
                                                  sources=["upload", "clipboard"], height=260,
                                                  elem_id="photo-input"))
                    photo_scale = unchecked(gr.Slider(handlers.MIN_SCALE, handlers.MAX_SCALE, value=2.0, step=0.05,
                                                      label="Scale", elem_id="photo-scale"))
                    photo_size = gr.Markdown("Upload a photo to see the output size.", elem_id="photo-size")
                    photo_model = gr.Dropdown(list(photo.PHOTO_MODELS), value=handlers.DEFAULT_MODEL,
                                              label="Model for the faces", elem_id="photo-model")
                    photo_run = gr.Button("Upscale the photo", variant="primary", elem_id="photo-run")
                    gr.Examples([[str(examples["astronaut"]), 2.0], [str(examples["grace_hopper"]), 1.5]],
                                inputs=[photo_in, photo_scale], label="Examples (public-domain portraits)")
                with gr.Column(scale=3, min_width=400):
                    photo_compare = gr.ImageSlider(label="Bicubic | faces super-resolved", type="filepath",
                                                   format="png", max_height=480, elem_id="photo-compare")
                    photo_faces = gr.Image(label="Faces found (green: super-resolved, orange: left bicubic)",
                                           type="pil", format="png", interactive=False, height=300,
                                           elem_id="photo-faces")
                    photo_report = gr.Markdown(label="Report", elem_id="photo-report")
                    photo_download = gr.File(label="Download the full-resolution PNG", elem_id="photo-download")

        with gr.Tab("Resolution robustness", id="robustness"):
            gr.Markdown("The paper's claim on your own face: the same face reduced to 16, 32, 64 and 128 px high, "
                        "each super-resolved to one output size, side by side. Use an aligned face of at "
                        "least 129 px for all four columns.")
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    rob_in = unchecked(gr.Image(label="Face", type="filepath", format="png", image_mode=None,
                                                sources=["upload", "clipboard"], height=260, elem_id="rob-input"))
                    rob_side = gr.Slider(64, 256, value=256, step=16, label="Output height (px)", elem_id="rob-side")
                    rob_model = gr.Dropdown(list(photo.PHOTO_MODELS), value=handlers.DEFAULT_MODEL,
                                            label="Model", elem_id="rob-model")
                    rob_run = gr.Button("Compare input sizes", variant="primary", elem_id="rob-run")
                    gr.Examples([[str(examples["grace_hopper_256"])], [str(examples["astronaut_160"])]],
                                inputs=[rob_in], label="Examples (public-domain portraits)")
                with gr.Column(scale=3, min_width=400):
                    rob_sheet = gr.Image(label="Sheet", show_label=False, type="pil", format="png",
                                         interactive=False, elem_id="rob-sheet")
                    rob_table = gr.Markdown(label="Table", elem_id="rob-table")

        with gr.Accordion("Models, limits and API", open=False):
            gr.Markdown(handlers.model_card())
            gr.Markdown(handlers.limits_text())
            gr.Markdown("API: `gradio_client.Client(url).predict(handle_file('face.png'), 2.5, api_name='/upscale')` "
                        "returns (result PNG, bicubic PNG, comparison pair, download, summary, zoom); see the README.")

        # ------------------------------------------------------------------------- events
        size_inputs = [face_in, resize_by, scale, width, height]
        gr.on([face_in.change, scale.change, width.change, height.change], describe, size_inputs, output_size,
              trigger_mode="always_last", **PRIVATE)
        resize_by.change(switch_resize, [resize_by, face_in, scale, width, height], [scale, size_row, width, height],
                         **PRIVATE).then(describe, size_inputs, output_size, **PRIVATE)
        run.click(run_upscale, [face_in, scale, model, resize_by, width, height, sample, seed],
                  [result_out, bicubic_out, compare, download, info, zoom, zoom_state],
                  api_name="upscale", api_description="Super-resolve a face by a scale or to a size.", **HEAVY)
        result_out.select(move_zoom, zoom_state, zoom, **PRIVATE)

        gr.on([photo_in.change, photo_scale.change], describe_photo, [photo_in, photo_scale], photo_size,
              trigger_mode="always_last", **PRIVATE)
        photo_run.click(run_photo, [photo_in, photo_scale, photo_model],
                        [photo_compare, photo_faces, photo_report, photo_download],
                        api_name="upscale_photo", api_description="Upscale a whole photo, faces by the model.",
                        **HEAVY)
        rob_run.click(run_robustness, [rob_in, rob_side, rob_model], [rob_sheet, rob_table],
                      api_name="robustness", api_description="One face at 16-128 px, each to one size.", **HEAVY)

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo
