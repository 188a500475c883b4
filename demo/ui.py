"""The Gradio page: `build_demo()` lays it out and wires it to the demo's modules.

Public API endpoints (see the README): /upscale (face mode), /upscale_full (the same, drawn by
ARASFSR itself), /restore (whole photo), /video (a short clip), /robustness. The other events only
update the page and are private.
"""
from __future__ import annotations

from contextlib import contextmanager

import gradio as gr

from arasfsr import restore

from . import footage, jobs, limits, models, sizes
from .errors import InputError, Stopped
from .examples import prepare_examples
from .face import preview_model, upscale_face
from .images import probe_image
from .photo import enhance_photo
from .robustness import robustness
from .zoom import zoom_view

QUEUE_SIZE = 16          # waiting requests; one more is refused with "queue full"
CONCURRENCY = 1          # model runs at once, all tabs together: bounds the server's memory
# Phone widths: a title that wraps instead of overflowing, tabs narrow enough that all four fit (390 px) and
# scroll sideways if they must.
CSS = """
@media (max-width: 640px) {
  #intro h1 { font-size: 1.45rem; line-height: 1.25; overflow-wrap: anywhere; }
  .tab-wrapper, [role=tablist] { overflow-x: auto; }
  .tab-container button { padding-left: 7px !important; padding-right: 7px !important; font-size: 0.9rem; }
}
"""
LAUNCH_KWARGS = dict(max_file_size=limits.MAX_UPLOAD_BYTES, ssr_mode=False, css=CSS)
# Page updates: private, never waiting behind a model run (own unlimited concurrency group). They go
# through the queue all the same, since only queued events show a gr.Error as a toast.
PRIVATE = dict(api_visibility="private", show_progress="hidden", concurrency_id="page", concurrency_limit=None)
HEAVY = dict(concurrency_id="model", concurrency_limit=CONCURRENCY)
SCROLL_TO = "() => {{ const e = document.querySelector('#{}'); if (e) e.scrollIntoView({{block: 'start'}}); }}"


def unchecked(component):
    """Let an input hand its raw value to the event function, which does every check itself.

    gr.Image opens each upload with Pillow before the function runs, so a non-image or a
    decompression bomb fails there with a bare "Error"; gr.Number, gr.Radio and gr.Dropdown refuse
    bad API values with their own words and a traceback in the server log. With this, the demo's
    modules refuse each bad input with its reason, in one line. (The override is set on the
    instance: a subclass would make Gradio write a .pyi stub next to this file at import.)
    """
    original = component.preprocess

    def preprocess(payload):
        if isinstance(component, (gr.Image, gr.Video)):
            if payload is None or payload.path is None:  # nothing, or a pasted image sent as a data URL
                return original(payload)
            return str(payload.path)  # Gradio has checked that the path is one of its uploads
        return payload

    component.preprocess = preprocess
    return component


@contextmanager
def refusals():
    """Turn an InputError (or Stop) into a gr.Error: the visitor sees the reason, the log stays quiet."""
    try:
        yield
    except (InputError, Stopped) as error:
        raise gr.Error(str(error), print_exception=False) from None  # user text in it is made safe by quote
    finally:
        jobs.release_memory()


def _tracker(progress: gr.Progress | None, request: gr.Request | None) -> jobs.Tracker:
    session = getattr(request, "session_hash", None)
    report = None if progress is None else (lambda fraction, desc: progress(fraction, desc=desc))
    return jobs.Tracker(report, session)


# ----------------------------------------------------------------------------- event functions
def run_upscale(image, scale=4.0, model=models.FACE_DEFAULT, resize_by="scale", width=256, height=256,
                sample=False, seed=0, request: gr.Request = None, progress=gr.Progress()):
    """Super-resolve a face. Yields (result PNG, bicubic PNG, (bicubic, result) for the slider,
    the download, a summary, the zoom view, the zoom state): first the distilled student's preview
    where ARASFSR draws a large output (`face.preview_model`), then the result."""
    with refusals():
        tracker = _tracker(progress, request)
        preview = preview_model(image, scale, model, resize_by, width, height)
        if preview:
            early = upscale_face(image, scale, preview, resize_by, width, height, sample, seed, progress=tracker)
            note = (f"**Preview** by {preview} ({early.seconds:.1f} s); {models.DEFAULT_MODEL} is drawing the full "
                    f"result (outputs larger than {limits.pixels_text(limits.PREVIEW_ABOVE_PIXELS)} get a preview).")
            yield _face_outputs(early, preview, note)
        result = upscale_face(image, scale, model, resize_by, width, height, sample, seed, progress=tracker)
        outputs = _face_outputs(result, model, result.info)
    yield outputs


def run_full(image, scale=4.0, model=models.FACE_DEFAULT, resize_by="scale", width=256, height=256,
             sample=False, seed=0, request: gr.Request = None, progress=gr.Progress()):
    """The Full model button: the same request drawn by ARASFSR itself, whatever the Model box says."""
    yield from run_upscale(image, scale, models.DEFAULT_MODEL, resize_by, width, height, sample, seed, request,
                           progress)


def _face_outputs(result, model: str, info: str) -> tuple:
    zoom = zoom_view(result.bicubic_path, result.result_path, labels=("Bicubic", model))
    result_path, bicubic_path = str(result.result_path), str(result.bicubic_path)
    state = {"bicubic": bicubic_path, "result": result_path, "model": model, "size": (result.width, result.height)}
    return result_path, bicubic_path, (bicubic_path, result_path), result_path, info, zoom, state


def example_upscale(image, scale):
    """Face examples, cached when the server starts: (slider pair, summary)."""
    with refusals():
        result = upscale_face(image, scale)
    return (str(result.bicubic_path), str(result.result_path)), result.info


def move_zoom(state, event: gr.SelectData):
    """Centre the zoom view where the visitor clicked on the model's output."""
    if not state or not isinstance(event.index, (list, tuple)) or len(event.index) != 2:
        return gr.skip()
    width, height = state["size"]
    centre = (event.index[0] / width, event.index[1] / height)
    with refusals():
        return zoom_view(state["bicubic"], state["result"], centre, labels=("Bicubic", state["model"]))


def describe(image, resize_by, scale, width, height):
    with refusals():
        return sizes.describe_request(image, resize_by, scale, width, height)


def describe_photo(image, scale):
    with refusals():
        return sizes.describe_request(image, "scale", scale, photo=True)


def switch_resize(resize_by, image, scale, width, height):
    """Show the scale box or the width/height boxes; prefill the boxes with the scale's size."""
    by_size = resize_by == "size"
    if by_size and image:
        try:
            height, width = sizes.plan_size(probe_image(image).shape, "scale", scale)
        except InputError:
            pass  # the size preview says what is wrong
    return gr.update(visible=not by_size), gr.update(visible=by_size), width, height


def run_photo(image, scale=2.0, model=None, request: gr.Request = None, progress=gr.Progress()):
    """Whole photo. Returns ((bicubic, result) for the slider, detected faces, report, download)."""
    with refusals():
        result = enhance_photo(image, scale, model, progress=_tracker(progress, request))
    result_path, bicubic_path = str(result.result_path), str(result.bicubic_path)
    return (bicubic_path, result_path), result.overview, result.report, result_path


def example_photo(image, scale):
    """Whole-photo examples, cached when the server starts: (slider pair, report)."""
    with refusals():
        result = enhance_photo(image, scale)
    return (str(result.bicubic_path), str(result.result_path)), result.report


def run_video(clip, scale=2.0, model=None, request: gr.Request = None, progress=gr.Progress()):
    """A short clip. Returns (bicubic video, result video, report, download)."""
    with refusals():
        result = footage.enhance_video(clip, scale, model, progress=_tracker(progress, request))
    return str(result.bicubic_path), str(result.result_path), result.report, str(result.result_path)


def run_robustness(image, out_side=256, model=models.DEFAULT_MODEL, request: gr.Request = None,
                   progress=gr.Progress()):
    """One face at 16, 32, 64 and 128 px, each super-resolved to out_side. Returns (sheet, table)."""
    with refusals():
        result = robustness(image, out_side, model, progress=_tracker(progress, request))
    return result.sheet, result.table


def example_robustness(image):
    with refusals():
        result = robustness(image, 256)
    return result.sheet, result.table


def stop(request: gr.Request = None):
    """The Stop button: the running job of this browser session ends at its next chunk."""
    jobs.request_stop(getattr(request, "session_hash", None))


# ----------------------------------------------------------------------------- layout
INTRO = """
# ARASFSR: face super-resolution at any scale
Enlarge a small face by any factor from 1 to {max_scale} (2.5 and 3.7 work as well as 4), or to any width and
height. The model, ARASFSR ([Tsai et al., arXiv 2511.16341](https://arxiv.org/abs/2511.16341)), is an
implicit decoder in the LIIF family: it predicts the colour at any point of the face, so one network
serves every scale and input size. For ordinary photos use the **Whole photo** tab. Runs on {device}
with the weights shipped in the repository; nothing leaves this server.

**Limits.** {limits}
"""


def _missing_weights_banner() -> str:
    missing = [label for label, ok in models.available_models().items()
               if not ok and label not in models.OPTIONAL]
    if not missing:
        return ""
    names = ", ".join(f"{label} (`{models.model_path(label).name}`)" for label in missing)
    return f"**Not installed on this server:** {names}. Choosing one shows an error; the others work."


def _scale_box(value: float, elem_id: str) -> gr.Number:
    """A typed scale: never clamped by the page; the run refuses anything outside the range, naming it."""
    return unchecked(gr.Number(value, label=f"Scale ({limits.MIN_SCALE:g} to {limits.MAX_SCALE:g}, non-integer "
                                            f"values are fine)", step=0.05, elem_id=elem_id))


def _face_tab(examples) -> None:
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            face_in = unchecked(gr.Image(label="Face", type="filepath", format="png", image_mode=None,
                                         sources=["upload", "clipboard"], height=260, elem_id="face-input"))
            resize_by = unchecked(gr.Radio([("Scale factor", "scale"), ("Width x height", "size")], value="scale",
                                           label="Resize by", elem_id="resize-by"))
            scale = _scale_box(4.0, "scale")
            with gr.Row(visible=False) as size_row:
                width = unchecked(gr.Number(256, label="Target width (px)", precision=None, elem_id="target-width"))
                height = unchecked(gr.Number(256, label="Target height (px)", precision=None,
                                             elem_id="target-height"))
            output_size = gr.Markdown("Upload an image to see the output size.", elem_id="output-size")
            model = unchecked(gr.Dropdown(models.face_choices(), value=models.FACE_DEFAULT, label="Model",
                                          elem_id="model"))
            with gr.Accordion("LFE latent (ARASFSR only)", open=False):
                sample = unchecked(gr.Checkbox(False, label="Sample the latent with a seed (default: its mean, "
                                                            "deterministic)", elem_id="sample"))
                seed = unchecked(gr.Number(0, label="Seed", precision=None, elem_id="seed"))
            with gr.Row():
                run = gr.Button("Upscale", variant="primary", elem_id="run")
                full = gr.Button(models.FULL_BUTTON, elem_id="run-full", min_width=100)
                stop_button = gr.Button("Stop", variant="stop", elem_id="stop", min_width=80)
            if models.available_models()[models.FAST]:
                gr.Markdown(f"Large outputs: larger than {limits.pixels_text(limits.FAST_ABOVE_PIXELS)}, Auto draws clean "
                            f"faces with {models.FAST}, {limits.FAST_SPEEDUP}x faster (measured at 1024 x 1024); "
                            f"larger than {limits.pixels_text(limits.PREVIEW_ABOVE_PIXELS)}, a face that "
                            f"{models.DEFAULT_MODEL} draws shows that preview first. '{models.FULL_BUTTON}' always "
                            f"renders with {models.DEFAULT_MODEL} itself.", elem_id="fast-note")
        with gr.Column(scale=3, min_width=300):
            compare = gr.ImageSlider(label="Bicubic | model (drag the handle)", type="filepath",
                                     format="png", max_height=420, elem_id="compare")
            info = gr.Markdown(label="Summary", elem_id="info")
            with gr.Row():
                bicubic_out = gr.Image(label="Bicubic", type="filepath", format="png", image_mode=None,
                                       interactive=False, height=240, elem_id="bicubic")
                result_out = gr.Image(label="Model (click to zoom there)", type="filepath", format="png",
                                      image_mode=None, interactive=False, height=240, elem_id="result")
            zoom = gr.Image(label="Zoom", show_label=False, type="pil", format="png", interactive=False,
                            elem_id="zoom")
            download = gr.File(label="Download the full-resolution PNG", elem_id="download")
    zoom_state = gr.State(None)
    gr.Examples([[str(examples["grace_hopper_64"]), 4.0], [str(examples["astronaut_96"]), 2.5]],
                inputs=[face_in, scale], outputs=[compare, info], fn=example_upscale, cache_examples=True,
                cache_mode="eager", label="Examples (public-domain portraits; results are ready)",
                elem_id="face-examples")

    size_inputs = [face_in, resize_by, scale, width, height]
    gr.on([face_in.change, scale.change, width.change, height.change], describe, size_inputs, output_size,
          trigger_mode="always_last", **PRIVATE)
    resize_by.change(switch_resize, [resize_by, face_in, scale, width, height], [scale, size_row, width, height],
                     **PRIVATE).then(describe, size_inputs, output_size, **PRIVATE)
    event = run.click(run_upscale, [face_in, scale, model, resize_by, width, height, sample, seed],
                      [result_out, bicubic_out, compare, download, info, zoom, zoom_state],
                      api_name="upscale", api_description="Super-resolve a face by a scale or to a size.",
                      scroll_to_output=True, **HEAVY)
    event.success(None, js=SCROLL_TO.format("compare"))
    full_event = full.click(run_full, [face_in, scale, model, resize_by, width, height, sample, seed],
                            [result_out, bicubic_out, compare, download, info, zoom, zoom_state],
                            api_name="upscale_full", api_description="The same request, drawn by ARASFSR itself.",
                            scroll_to_output=True, **HEAVY)
    stop_button.click(stop, None, None, cancels=[event, full_event], **PRIVATE)
    result_out.select(move_zoom, zoom_state, zoom, **PRIVATE)


def _photo_tab(examples) -> None:
    gr.Markdown(f"Every face is found (YuNet) and re-drawn by the model straight onto the enlarged photo's "
                f"pixels from the face's own pixels (no warping in or out); the rest of the photo is bicubic. "
                f"Up to {restore.MAX_FACES} faces of at least {restore.MIN_FACE_SIDE} px, each at most "
                f"{restore.MAX_FACE_OUTPUT_SIDE} px once enlarged; faces outside "
                f"these bounds, or that would come out softer than bicubic, are listed with the reason and "
                f"left bicubic. Beyond the paper, which handles aligned faces only.")
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            photo_in = unchecked(gr.Image(label="Photo", type="filepath", format="png", image_mode=None,
                                          sources=["upload", "clipboard"], height=260, elem_id="photo-input"))
            photo_scale = _scale_box(2.0, "photo-scale")
            photo_size = gr.Markdown("Upload a photo to see the output size.", elem_id="photo-size")
            photo_model = unchecked(gr.Dropdown(models.photo_choices(), value=models.photo_default(),
                                                label="Model for the faces", elem_id="photo-model"))
            with gr.Row():
                photo_run = gr.Button("Upscale the photo", variant="primary", elem_id="photo-run")
                photo_stop = gr.Button("Stop", variant="stop", elem_id="photo-stop", min_width=80)
        with gr.Column(scale=3, min_width=300):
            photo_compare = gr.ImageSlider(label="Bicubic | faces super-resolved", type="filepath",
                                           format="png", max_height=480, elem_id="photo-compare")
            photo_report = gr.Markdown(label="Report", elem_id="photo-report")
            photo_faces = gr.Image(label="Faces found (green: super-resolved, orange: left bicubic)",
                                   type="pil", format="png", interactive=False, height=300, elem_id="photo-faces")
            photo_download = gr.File(label="Download the full-resolution PNG", elem_id="photo-download")
    gr.Examples([[str(examples["astronaut"]), 2.0], [str(examples["grace_hopper"]), 1.5]],
                inputs=[photo_in, photo_scale], outputs=[photo_compare, photo_report], fn=example_photo,
                cache_examples=True, cache_mode="eager", label="Examples (public-domain portraits; results are ready)",
                elem_id="photo-examples")

    gr.on([photo_in.change, photo_scale.change], describe_photo, [photo_in, photo_scale], photo_size,
          trigger_mode="always_last", **PRIVATE)
    event = photo_run.click(run_photo, [photo_in, photo_scale, photo_model],
                            [photo_compare, photo_faces, photo_report, photo_download],
                            api_name="restore", api_description="Upscale a whole photo, faces by the model.",
                            **HEAVY)
    event.success(None, js=SCROLL_TO.format("photo-compare"))
    photo_stop.click(stop, None, None, cancels=[event], **PRIVATE)


def _video_tab() -> None:
    gr.Markdown("A short clip, frame by frame: every face is found, **tracked from frame to frame** (so it holds "
                "still instead of jumping between detections, the model's detail averaged along its motion) and re-drawn by "
                "the model as in the Whole photo tab; the rest of each frame is bicubic here (" + footage.BACKGROUND_NOTE
                + "). Every frame, the frame rate and the sound are kept; the result is "
                "H.264. **Limits:** " + footage.limits_text() + " Longer clips are refused with the reason; the "
                "command line (`python -m arasfsr video`) takes them.")
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            clip_in = unchecked(gr.Video(label="Clip", sources=["upload"], format=None, height=260,
                                         elem_id="video-input"))
            clip_scale = unchecked(gr.Number(2.0, label=f"Scale (1 to {footage.MAX_SCALE:g})", step=0.25,
                                             elem_id="video-scale"))
            clip_model = unchecked(gr.Dropdown(models.photo_choices(), value=models.photo_default(),
                                               label="Model for the faces", elem_id="video-model"))
            with gr.Row():
                clip_run = gr.Button("Upscale the clip", variant="primary", elem_id="video-run")
                clip_stop = gr.Button("Stop", variant="stop", elem_id="video-stop", min_width=80)
        with gr.Column(scale=3, min_width=300):
            with gr.Row():
                clip_before = gr.Video(label="Before: bicubic", format=None, interactive=False, elem_id="video-before")
                clip_after = gr.Video(label="After: faces super-resolved", format=None, interactive=False,
                                      elem_id="video-after")
            clip_report = gr.Markdown(label="Report", elem_id="video-report")
            clip_download = gr.File(label="Download the result (MP4)", elem_id="video-download")
    event = clip_run.click(run_video, [clip_in, clip_scale, clip_model],
                           [clip_before, clip_after, clip_report, clip_download],
                           api_name="video", api_description="Upscale a short clip, faces tracked and by the model.",
                           **HEAVY)
    event.success(None, js=SCROLL_TO.format("video-after"))
    clip_stop.click(stop, None, None, cancels=[event], **PRIVATE)


def _robustness_tab(examples) -> None:
    gr.Markdown("The paper's claim on your own face: the same face reduced to 16, 32, 64 and 128 px high, "
                "each super-resolved to one output size, side by side. Use an aligned face of at "
                "least 129 px for all four columns.")
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            rob_in = unchecked(gr.Image(label="Face", type="filepath", format="png", image_mode=None,
                                        sources=["upload", "clipboard"], height=260, elem_id="rob-input"))
            rob_side = unchecked(gr.Slider(64, 256, value=256, step=16, label="Output height (px)",
                                           elem_id="rob-side"))
            rob_model = unchecked(gr.Dropdown(models.photo_choices(), value=models.DEFAULT_MODEL, label="Model",
                                              elem_id="rob-model"))
            with gr.Row():
                rob_run = gr.Button("Compare input sizes", variant="primary", elem_id="rob-run")
                rob_stop = gr.Button("Stop", variant="stop", elem_id="rob-stop", min_width=80)
        with gr.Column(scale=3, min_width=300):
            rob_sheet = gr.Image(label="Sheet", show_label=False, type="pil", format="png", interactive=False,
                                 elem_id="rob-sheet")
            rob_table = gr.Markdown(label="Table", elem_id="rob-table")
    gr.Examples([[str(examples["grace_hopper_256"])], [str(examples["astronaut_160"])]], inputs=[rob_in],
                outputs=[rob_sheet, rob_table], fn=example_robustness, cache_examples=True, cache_mode="eager",
                label="Examples (public-domain portraits; results are ready)", elem_id="rob-examples")
    event = rob_run.click(run_robustness, [rob_in, rob_side, rob_model], [rob_sheet, rob_table],
                          api_name="robustness", api_description="One face at 16-128 px, each to one size.",
                          **HEAVY)
    event.success(None, js=SCROLL_TO.format("rob-sheet"))
    rob_stop.click(stop, None, None, cancels=[event], **PRIVATE)


def build_demo() -> gr.Blocks:
    """The whole page, queued (CONCURRENCY model runs at once, QUEUE_SIZE waiting), not launched.

    Examples are cached (results computed) when the page is launched, so a first visitor sees output.
    """
    examples = prepare_examples()
    if models.available_models()[models.DEFAULT_MODEL]:
        models.get_model(models.DEFAULT_MODEL)  # load the default now, so the first visitor does not wait
    device = "a GPU" if limits.on_gpu() else "a CPU"

    with gr.Blocks(title="ARASFSR face super-resolution", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO.format(device=device, limits=models.LIMITS, max_scale=f"{limits.MAX_SCALE:g}"), elem_id="intro")
        banner = _missing_weights_banner()
        if banner:
            gr.Markdown(banner, elem_id="missing-weights")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Face", id="face", elem_id="tab-face"):
                _face_tab(examples)
            with gr.Tab("Whole photo", id="photo", elem_id="tab-photo"):
                _photo_tab(examples)
            with gr.Tab("Video", id="video", elem_id="tab-video"):
                _video_tab()
            with gr.Tab("Robustness", id="robustness", elem_id="tab-robustness"):
                _robustness_tab(examples)
        with gr.Accordion("Models, limits and API", open=False):
            gr.Markdown(models.model_card())
            gr.Markdown(limits.limits_text())
            gr.Markdown("API: `gradio_client.Client(url).predict(handle_file('face.png'), 2.5, api_name='/upscale')` "
                        "returns (result PNG, bicubic PNG, comparison pair, download, summary, zoom); see the README.")

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo
