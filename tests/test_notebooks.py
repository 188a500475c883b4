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
