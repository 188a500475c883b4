"""Fuzzing the intake and the weight reader (hypothesis): whatever bytes or metadata come in, the
answer is an image / a model, or one of the documented errors with a one-line message; never
another exception. A few seconds per test (example counts below)."""
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import arasfsr
from arasfsr.io import FORMATS, ImageError, read_image
from arasfsr.weights import DEFAULT_WEIGHTS, WEIGHTS_DIR, WeightFileError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(fmt: str) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


VALID = {fmt: _valid(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")}


def _read(tmp_path, blob: bytes):
    path = tmp_path / "upload.png"
    path.write_bytes(blob)
    try:
        image = read_image(path)
    except (ImageError, FileNotFoundError) as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return None
    assert image.size[0] > 0 and image.size[1] > 0
    return image


@FAST
@given(st.binary(max_size=256), st.sampled_from([b"", *[m for ms in FORMATS.values() for m in ms]]))
def test_random_bytes_behind_any_magic_number_are_an_image_or_one_line(tmp_path, blob, magic):
    _read(tmp_path, magic + blob)


@FAST
@given(st.sampled_from(sorted(VALID)), st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)),
                                                 min_size=1, max_size=8), st.integers(0, 10 ** 6))
def test_damaged_files_of_every_format_are_an_image_or_one_line(tmp_path, fmt, edits, cut):
    blob = bytearray(VALID[fmt])
    for where, value in edits:
        blob[where % len(blob)] = value
    _read(tmp_path, bytes(blob[: max(1, cut % (len(blob) + 1))]))


_SOURCE = WEIGHTS_DIR / DEFAULT_WEIGHTS["lte"]
ODD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 9, 10 ** 9), st.floats(allow_nan=True),
                       st.text(max_size=8), st.lists(st.integers(-3, 300), max_size=3))


@pytest.fixture(scope="module")
def lte_file():
    from safetensors.torch import load_file

    from arasfsr.weights import read_header
    return load_file(str(_SOURCE)), read_header(_SOURCE)[1]


CONFIG_KEYS = ["name", "encoder_channels", "encoder_blocks", "hidden_dim", "hidden_layers", "use_lfe", "use_gcm",
               "use_skip", "norm_mean", "norm_std", "lfe_channels", "gcm_frequencies", "encoder"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), ODD_VALUES, min_size=1, max_size=3))
def test_weight_files_with_odd_config_values_load_or_are_refused_in_one_line(tmp_path, lte_file, changes):
    from safetensors.torch import save_file
    state, meta = lte_file
    config = {**json.loads(meta["config"]), **changes}
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path), metadata={**meta, "config": json.dumps(config)})
    try:
        model = arasfsr.load_model(path, device="cpu")
    except (WeightFileError, FileNotFoundError) as err:
        assert "\n" not in str(err)
        return
    assert model.config.norm_std > 0  # it loaded: then it is a usable model


@FAST
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=6))
def test_weight_files_with_damaged_headers_are_refused_in_one_line(tmp_path, edits):
    blob = bytearray(_SOURCE.read_bytes())
    for where, value in edits:
        blob[where % min(len(blob), 4000)] = value
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(blob))
    try:
        arasfsr.load_model(path, device="cpu")
    except (WeightFileError, FileNotFoundError) as err:
        assert "\n" not in str(err)
