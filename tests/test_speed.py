"""The speed machinery changes no number: blocks, workers, chunks, thread settings, torch.compile.

(Correctness only; timings are in benchmarks/bench_inference.py.)
"""
import os
import threading

import pytest
import torch

import arasfsr
from arasfsr import threads
from arasfsr.decoder import inference_blocks
from arasfsr.inference import render
from arasfsr.threads import GPU_BLOCK, InferencePlan, configure_threads, inference_plan, thread_limit


def _query_inputs(name="arasfsr", n=777, seed=0):
    torch.manual_seed(seed)
    model = arasfsr.create_model(name, preset="tiny").eval()
    lr = torch.rand(2, 3, 9, 13)
    coord = torch.rand(2, n, 2) * 2 - 1
    cell = torch.full_like(coord, 2 / 40)
    return model, lr, coord, cell


@pytest.mark.parametrize("name", ["arasfsr", "liif", "lte", "arasfsr-no-gcm"])
@pytest.mark.parametrize("block,workers", [(64, 3), (7, 2), (10_000, 2), (100, 1)])
@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_blocks_spread_over_workers_equal_the_straightforward_path(name, block, workers, mode):
    model, lr, coord, cell = _query_inputs(name)
    features = model.encode(lr)
    with torch.no_grad():
        reference = model.query(features, coord, cell, fast=False)
    context = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
    with context, inference_blocks(block, workers):
        fast = model.query(features, coord, cell)
    assert fast.shape == reference.shape
    assert torch.allclose(fast, reference, atol=1e-5)


def test_blocks_run_on_single_threaded_workers(monkeypatch):
    model, lr, coord, cell = _query_inputs()
    seen = []
    inner = model.decoder._fast_inference

    def spy(projection, latent_shape, coord, cell, workspace, frame=None):
        seen.append((threading.current_thread().name, torch.get_num_threads(), coord.shape[1]))
        return inner(projection, latent_shape, coord, cell, workspace, frame=frame)

    monkeypatch.setattr(model.decoder, "_fast_inference", spy)
    with torch.inference_mode():
        features = model.encode(lr)
        with inference_blocks(64, 2):  # 2 images: 32 queries of each per block
            model.query(features, coord, cell)
    assert len(seen) == -(-777 // 32)
    assert {name for name, _, _ in seen} <= {"arasfsr-block_0", "arasfsr-block_1"}
    assert all(n == 1 for _, n, _ in seen)


def test_worker_threads_leave_the_callers_thread_count():
    model, lr, coord, cell = _query_inputs()
    with torch.inference_mode(), thread_limit(2):
        features = model.encode(lr)
        with inference_blocks(64, 2):
            model.query(features, coord, cell)
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads_set", [1, 2])
def test_render_restores_threads_and_is_independent_of_the_plan(tiny_model, threads_set):
    lr = torch.rand(1, 3, 9, 12)
    with thread_limit(threads_set):
        planned = render(tiny_model, lr, (40, 51))  # chunk size and workers per plan
        assert torch.get_num_threads() == threads_set
    with thread_limit(1), inference_blocks(10_000, 1):
        serial = render(tiny_model, lr, (40, 51), chunk_size=37)
    assert torch.allclose(planned, serial, atol=1e-6)


def test_inference_plan_per_device():
    cuda = inference_plan("cuda", 16)
    assert cuda == inference_plan(torch.device("cuda:1"), 1)  # GPU: independent of CPU threads
    assert cuda.workers == 1 and cuda.block == GPU_BLOCK >= 65536 and cuda.chunk_size >= cuda.block
    one = inference_plan("cpu", 1)
    assert one.workers == 1 and one.block <= 4096  # cache-sized blocks on the CPU
    many = inference_plan("cpu", 32)
    assert many.workers == 32 and many.block == one.block
    assert many.chunk_size >= 16 * many.block * many.workers  # many blocks per worker per chunk
    assert isinstance(one, InferencePlan)
    with pytest.raises(ValueError, match="threads"):
        inference_plan("cpu", 0)


def test_inference_blocks_rejects_nonsense():
    with pytest.raises(ValueError, match="block"):
        with inference_blocks(0, 1):
            pass


def test_configure_threads_reads_omp_num_threads(monkeypatch):
    saved = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_threads(max_threads=8) == 1 == torch.get_num_threads()
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(threads, "available_cpus", lambda: 6)
        assert configure_threads(max_threads=2) == 2 == torch.get_num_threads()
        assert configure_threads() == 6
        monkeypatch.setenv("OMP_NUM_THREADS", "lots")
        with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
            configure_threads()
    finally:
        torch.set_num_threads(saved)


def test_available_and_idle_cpus_are_within_the_machine():
    cpus = threads.available_cpus()
    assert 1 <= cpus <= (os.cpu_count() or cpus)
    assert 1 <= threads.idle_cpus() <= cpus


def test_idle_cpus_subtracts_other_running_threads(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads, "_running_threads", lambda: 3)  # this thread + 2 others
    assert threads.idle_cpus(interval=0) == 2
    monkeypatch.setattr(threads, "_running_threads", lambda: 12)  # a very busy machine
    assert threads.idle_cpus(interval=0) == 1
    monkeypatch.setattr(threads, "_running_threads", lambda: None)  # not Linux
    assert threads.idle_cpus(interval=0) == 4


@pytest.mark.slow
def test_torch_compile_matches_eager_for_training_and_inference():
    """The tiny preset compiled (inductor; on the CPU it needs a C compiler), against eager mode:
    the training model as train.py compiles it (LFE sampling on: its noise is drawn differently
    when compiled, so only closeness and finite gradients are checked), the training forward +
    backward with the LFE mean (equal), and the no-grad fast query (equal)."""
    torch._dynamo.reset()
    model, lr, coord, cell = _query_inputs(n=300)
    model.train()

    def step(net):
        pred, kl = net(lr, coord, cell, with_kl=True)
        model.zero_grad()
        (pred.square().mean() + 0.1 * kl).backward()
        return pred.detach(), [p.grad.clone() for p in model.parameters()]

    pred_e, _ = step(model)
    # dynamic shapes, as when a last batch is smaller: failed at lfe.py's randn(mu.shape) before
    pred_c, grads_c = step(torch.compile(model, dynamic=True))
    assert (pred_c - pred_e).abs().max() < 0.05 and all(torch.isfinite(g).all() for g in grads_c)

    def mean_latent(lr, coord, cell, with_kl):  # (with_kl: as the model's forward)
        features = model.encode(lr, sample=False)
        return model.query(features, coord, cell), features.kl()

    (pred_e, grads_e), (pred_c, grads_c) = step(mean_latent), step(torch.compile(mean_latent))
    assert torch.allclose(pred_e, pred_c, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads_e, grads_c))

    model.eval()
    query = torch.compile(model.query)
    with torch.no_grad():
        features = model.encode(lr)
        eager = model.query(features, coord, cell)
        assert torch.allclose(query(features, coord, cell), eager, atol=1e-5)
