"""Every notebook in notebooks/ executes headless in FAST mode, within one time budget per notebook.

Each notebook runs in a fresh `python3` kernel (nbclient), in notebooks/ as its working directory,
with ARASFSR_FAST=1, matplotlib's inline backend (headless) and ONE thread (OMP_NUM_THREADS=1,
ARASFSR_THREADS=1 in the kernel's environment: on a busy 2-core machine more threads made cells
7-10x slower, not faster). The budget is for the whole notebook: before each cell the per-cell
timeout is set to what is left of it, so no single cell and no sum of cells can exceed it.
The committed notebooks must carry no outputs and a papermill `parameters` cell with the FAST switch.

The execution tests are marked `slow` (minutes each): `pytest -m "not slow"` skips them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = ["00_quickstart", "01_spectral_bias", "02_local_frequency_latents",
            "03_global_coordinate_modulation", "04_train_on_celebahq", "05_arbitrary_scale_and_resolution",
            "06_liif_core"]
NOTEBOOK_BUDGET_S = 600  # per notebook, all cells together, one thread
# matplotlib's inline backend renders each figure to PNG without a display, so the figures are
# part of what is tested (with MPLBACKEND=Agg they would never be drawn into the notebook)
KERNEL_ENV = {"ARASFSR_FAST": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ARASFSR_THREADS": "1"}


def test_the_series_is_complete():
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_clean_and_parameterised(name):
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code_cells), \
        f"{name}: clear the outputs before committing (jupyter nbconvert --clear-output --inplace)"
    first = code_cells[0]
    assert "parameters" in first.metadata.get("tags", []), f"{name}: the first code cell must be tagged 'parameters'"
    assert 'FAST = os.environ.get("ARASFSR_FAST", "1") != "0"' in first.source


def execute_within_budget(nb, budget_s: float) -> list[float]:
    """Run every code cell of `nb` in a fresh kernel; raise if a cell fails or the budget runs out.

    Returns the seconds each code cell took.
    """
    client = nbclient.NotebookClient(nb, timeout=budget_s, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    start = time.monotonic()
    seconds = []
    with client.setup_kernel(env={**os.environ, **KERNEL_ENV}):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = budget_s - (time.monotonic() - start)
            if left <= 0:
                raise TimeoutError(f"the notebook's {budget_s:.0f} s budget ran out before cell {index}")
            client.timeout = max(1, int(left))  # this cell may use what is left, no more
            began = time.monotonic()
            client.execute_cell(cell, index)  # raises CellExecutionError (or a timeout) on failure
            seconds.append(time.monotonic() - began)
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes_in_fast_mode(name):
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    seconds = execute_within_budget(nb, NOTEBOOK_BUDGET_S)
    slowest = max(range(len(seconds)), key=seconds.__getitem__)
    print(f"{name}: {sum(seconds):.1f} s in {len(seconds)} code cells (slowest: code cell {slowest}, "
          f"{seconds[slowest]:.1f} s)")
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    # every cell ran (none skipped by an early stop) and the notebook drew what it is about
    assert all(c.execution_count is not None for c in code_cells)
    figures = sum("image/png" in o.get("data", {}) for c in code_cells for o in c.outputs)
    assert figures >= 1, f"{name} executed but displayed no figure"
    blank = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "\nslider(" in "\n" + c.source
             and not any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert not blank, f"{name}: the slider cells {blank} left no picture in the executed notebook"


# --- the notebooks' self-checks can fail (issue 19) ---------------------------------------------

def _common_module():
    import importlib
    import sys
    sys.path.insert(0, str(NOTEBOOKS_DIR))
    try:
        return importlib.import_module("_common")
    finally:
        sys.path.remove(str(NOTEBOOKS_DIR))


def test_agrees_fails_on_a_wrong_answer_and_on_a_check_that_cannot_fail():
    import numpy as np
    agrees = _common_module().agrees
    reference = np.linspace(0, 1, 12)
    assert agrees("same", reference + 1e-5, reference, 1e-3, unlike=reference + 0.1) < 2e-5
    with pytest.raises(AssertionError, match="off by"):
        agrees("wrong", reference + 0.01, reference, 1e-3)
    with pytest.raises(AssertionError, match="cannot fail"):      # the alternative passes the tolerance too
        agrees("blunt", reference, reference, 1.0, unlike=reference + 0.1)


def test_notebook_02s_sampling_check_tells_a_sample_from_the_mean():
    """02 checks its re-derived sampling against the package's before rounding: leaving the noise
    out (z = mu), or dropping the clamp on log sigma^2, must fail that check at its tolerance."""
    import numpy as np
    import torch

    import arasfsr
    from arasfsr.coords import make_cell, make_coord
    common = _common_module()
    model = arasfsr.load_model("arasfsr")
    lr = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    coord = make_coord((96, 96))[None]
    cell = make_cell((96, 96)).expand_as(coord)

    def render(seed, clamp=True):
        with torch.no_grad():
            if seed is None:
                features = model.encode(lr, sample=False)
            elif clamp:
                features = model.encode(lr, sample=True, generator=torch.Generator().manual_seed(seed))
            else:  # a broken re-derivation: the raw log-variance, no clamp
                from arasfsr.model import Features
                lr_norm = (lr - model.config.norm_mean) / model.config.norm_std
                mu, logvar = model.lfe.encoder(lr_norm).chunk(2, dim=1)
                eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
                latent = torch.cat([model.encoder(lr_norm), model.lfe.decoder(mu + eps * torch.exp(0.5 * logvar))], 1)
                features = Features(latent, lr_norm, model.decoder.project(latent), mu, logvar)
            return model.query(features, coord, cell)[0].clamp(0, 1).numpy().astype(np.float64) * 255

    sample, mean = render(3), render(None)
    common.agrees("sample", render(3), sample, 1e-3, unlike=mean)        # the notebook's check passes...
    with pytest.raises(AssertionError, match="off by"):
        common.agrees("no noise", mean, sample, 1e-3)                     # ...and fails without the noise
    with pytest.raises(AssertionError, match="off by"):
        common.agrees("no clamp", render(3, clamp=False), sample, 1e-3)   # ...and without the clamp


def test_the_like_for_like_check_fails_on_files_trained_differently():
    """02, 03 and 05 assert (or report) that their comparison files were trained alike: the check
    passes for the shipped compare-* pair and fails for the old ablation file beside them."""
    import arasfsr
    common = _common_module()
    pair = {"with": arasfsr.load_model("compare-arasfsr"), "without": arasfsr.load_model("compare-arasfsr-no-lfe")}
    shared = common.assert_like_for_like(pair)
    assert shared["recipe"] == "compare-1000" and common.recipe_differences(pair) == {}
    unlike = {"with": pair["with"], "without": arasfsr.load_model("arasfsr-no-lfe")}  # 0.1's budget
    differing = common.recipe_differences(unlike)
    assert set(differing) == {"without"} and "recipe" in differing["without"] and "learning_rate" in differing["without"]
    with pytest.raises(AssertionError, match="not trained alike"):
        common.assert_like_for_like(unlike)


def _set_repository_module():
    import importlib.util
    path = NOTEBOOKS_DIR.parent / "scripts" / "set_repository.py"
    spec = importlib.util.spec_from_file_location("set_repository", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_colab_badge_and_repo_url_are_set_in_one_place(tmp_path):
    """Notebook 04's badge and REPO_URL agree as committed (placeholder and empty, or one repository),
    `scripts/set_repository.py ACCOUNT/NAME` writes both, and a disagreement is caught."""
    tool = _set_repository_module()
    assert tool.main(["--check"]) == 0
    copy = tmp_path / "04.ipynb"
    copy.write_bytes(tool.NOTEBOOK.read_bytes())
    assert tool.main(["some-account/arasfsr", "--notebook", str(copy)]) == 0
    badge, url = tool.read(copy)
    assert badge == "some-account/arasfsr" and url == "https://github.com/some-account/arasfsr.git"
    nb = nbformat.read(copy, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # still a clean notebook
    assert tool.main(["not a name", "--notebook", str(copy)]) == 2
    text = copy.read_text().replace("some-account/arasfsr.git", "someone-else/arasfsr.git")
    copy.write_text(text)
    assert tool.main(["--check", "--notebook", str(copy)]) == 1
