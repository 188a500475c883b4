import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import arasfsr
from arasfsr.train import TrainConfig, train
from arasfsr.weights import read_metadata

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A folder of smooth synthetic 'faces' (64 and 96 px) with a manifest holding train/val splits."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    files = []
    for i in range(14):
        side = 64 if i % 2 else 96
        y, x = np.mgrid[0:side, 0:side] / side
        f = rng.uniform(1, 6, 3)
        img = np.stack([np.sin(f[c] * (x + c * y) * 3) for c in range(3)], -1) * 0.4 + 0.5
        split = "val" if i >= 12 else "train"
        name = f"{split}/face{i:02d}.png"
        (root / split).mkdir(exist_ok=True)
        Image.fromarray((img * 255).astype(np.uint8)).save(root / name)
        files.append({"name": name, "identity": f"id{i}", "size": side, "split": split})
    (root / "manifest.json").write_text(json.dumps({"files": files}))
    return root


def _config(faces, out, **kw):
    values = dict(model="arasfsr", preset="tiny", data=str(faces), out=str(out), steps=6, batch_size=4,
                  num_queries=128, val_every=3, ckpt_every=3, input_sizes=(12, 24), threads=1)
    values.update(kw)
    return TrainConfig(**values)


@pytest.mark.slow
def test_train_tiny_end_to_end(faces, tmp_path):
    path = train(_config(faces, tmp_path / "run"), progress=False)
    model = arasfsr.load_model(path)
    info = read_metadata(path)["training"]
    assert info["steps"] == 6 and info["scale_range"] == [1.0, 8.0] and info["input_sizes"] == [12, 24]
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_psnr" in r] == [3, 6]
    assert all(np.isfinite(r["val_psnr"]) for r in rows if "val_psnr" in r)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert arasfsr.upscale(model, np.zeros((16, 16, 3), np.uint8), scale=2.5).size == (40, 40)


def _run_cli(faces, out, *extra, **popen):
    cmd = [sys.executable, "-m", "arasfsr", "train", "--preset", "tiny", "--data", str(faces), "--out", str(out),
           "--batch-size", "4", "--num-queries", "2048", "--input-sizes", "24,24", "--threads", "1",
           "--val-every", "1000", "--no-progress", *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


@pytest.mark.slow
def test_resume_after_kill_continues_exactly(faces, tmp_path):
    steps = ["--steps", "40", "--ckpt-every", "4"]
    proc = _run_cli(faces, tmp_path / "killed", *steps)
    ckpt = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # no clean-up: as a crash or an OOM kill would
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < killed_at < 40, "the run finished before it could be killed; the test proves nothing"
    resumed = _run_cli(faces, tmp_path / "killed", *steps, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read().decode()
    straight = _run_cli(faces, tmp_path / "straight", *steps)
    assert straight.wait(timeout=300) == 0
    a = load_file(str(tmp_path / "killed" / "arasfsr_tiny.safetensors"))
    b = load_file(str(tmp_path / "straight" / "arasfsr_tiny.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), "resumed run diverged from the uninterrupted one"
    rows = [json.loads(line) for line in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [10, 20, 30, 40]  # no duplicated or lost log lines


def test_nan_guard_stops_without_saving(faces, tmp_path):
    with pytest.raises(FloatingPointError, match="stopping without saving"):
        train(_config(faces, tmp_path / "nan", learning_rate=1e12, steps=50, ckpt_every=1000), progress=False)
    assert not (tmp_path / "nan" / "last.pt").exists()
    assert not list((tmp_path / "nan").glob("*.safetensors"))


def test_guard_never_keeps_exploded_weights_as_good(faces, tmp_path):
    # lr 1e9 with a checkpoint every step: the loss stays finite for a step or two while the
    # weights jump to ~1e9; such weights must never become "the last good checkpoint"
    with pytest.raises(FloatingPointError, match="exploded|not finite"):
        train(_config(faces, tmp_path / "boom", learning_rate=1e9, steps=20, ckpt_every=1, warmup_steps=0),
              progress=False)
    ckpt = tmp_path / "boom" / "last.pt"
    if ckpt.exists():  # whatever was kept must be sane
        state = torch.load(ckpt, weights_only=True)
        assert all(torch.isfinite(v).all() and v.abs().max() < 1e4 for v in state["model"].values())
    assert not list((tmp_path / "boom").glob("*.safetensors"))


class _Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_resume_runs_no_code_from_the_checkpoint(faces, tmp_path):
    run = tmp_path / "evil"
    run.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"model": _Payload(marker), "step": 1}, run / "last.pt")
    with pytest.raises(ValueError, match="cannot be resumed safely"):
        train(_config(faces, run), resume=True, progress=False)
    assert not marker.exists()


def test_resume_applies_a_changed_learning_rate_and_says_so(faces, tmp_path, capsys):
    run = tmp_path / "lr"
    train(_config(faces, run, steps=4, ckpt_every=4, val_every=100, warmup_steps=0), progress=False)
    train(_config(faces, run, steps=8, ckpt_every=4, val_every=100, warmup_steps=0, learning_rate=1e-5),
          resume=True, progress=False)
    err = capsys.readouterr().err
    assert "learning_rate 0.0004 -> 1e-05" in err and "steps 4 -> 8" in err
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows if "loss" in r and r["step"] > 4] == [pytest.approx(1e-6)]  # x0.1 after 80%
    with pytest.raises(ValueError, match="cannot be resumed as"):
        train(_config(faces, run, model="lte", steps=12), resume=True, progress=False)


def test_log_holds_what_tells_a_collapse(faces, tmp_path):
    run = tmp_path / "log"
    train(_config(faces, run, steps=10, val_every=5, ckpt_every=10), progress=False)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert {"grad_norm", "logvar_min", "logvar_max"} <= set(train_rows[0])
    assert any(k.startswith("loss_x") for k in train_rows[0])
    val = [r for r in rows if "val_psnr" in r]
    assert val and all("ema_val_psnr" in r for r in val)


def test_workers_build_the_same_batches(faces):
    from arasfsr.data import SRBatchCollate
    from arasfsr.train import Batches, batch_loader, training_masters
    batches = Batches(training_masters(str(faces)), SRBatchCollate((12, 24), (1, 4), 32, hflip=True), 4, 0, 0, 6)
    inline = list(batch_loader(batches, 2, workers=0))
    parallel = list(batch_loader(batches, 2, workers=2))
    assert len(inline) == len(parallel) == 4
    assert all(torch.equal(a[k], b[k]) for a, b in zip(inline, parallel) for k in a)


@pytest.mark.slow
def test_ddp_two_processes_gloo(faces, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "arasfsr", "train", "--preset", "tiny",
           "--data", str(faces), "--out", str(tmp_path / "ddp"), "--steps", "4", "--batch-size", "2",
           "--num-queries", "64", "--input-sizes", "12,12", "--threads", "1", "--device", "cpu",
           "--val-every", "2", "--ckpt-every", "2", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    info = read_metadata(tmp_path / "ddp" / "arasfsr_tiny.safetensors")["training"]
    assert info["world_size"] == 2 and info["batch_size"] == 4 and info["steps"] == 4


def test_bounded_log_variance_stops_the_latent_explosion(faces, tmp_path, monkeypatch):
    """Without the clamp the LFE's log-variance runs away at a high learning rate (no KL term holds
    it), the sampled latent explodes and the run dies; with it the same run trains on."""
    import math

    import arasfsr.lfe as lfe
    settings = dict(steps=40, learning_rate=3e-2, grad_clip=0, warmup_steps=0, ema_decay=0, hflip=False,
                    num_queries=256, val_every=1000, ckpt_every=1000)
    bounded = train(_config(faces, tmp_path / "bounded", **settings), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "bounded" / "log.jsonl").read_text().splitlines()]
    low, high = lfe.LOGVAR_RANGE
    assert all(low <= r["logvar_min"] and r["logvar_max"] <= high for r in rows if "loss" in r)
    assert bounded.exists()
    monkeypatch.setattr(lfe, "LOGVAR_RANGE", (-math.inf, math.inf))  # the authors' unbounded head
    with pytest.raises(FloatingPointError, match="stopping without saving"):
        train(_config(faces, tmp_path / "free", **settings), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "free" / "log.jsonl").read_text().splitlines()]
    assert max(r["logvar_max"] for r in rows if "loss" in r) > 10 * high


def test_a_collapse_that_stays_finite_is_rolled_back(faces, tmp_path, monkeypatch, capsys):
    """A collapse that leaves the loss finite (here: the decoder's output pushed far off, as a bad
    step can do) is seen by validation, and the run returns to its best weights."""
    from arasfsr.train import Trainer
    real_step = Trainer.step

    def step_that_collapses(self, net, batch):
        stats = real_step(self, net, batch)
        if self.step_index == 7:  # after the first validation (step 5)
            with torch.no_grad():
                for model in (self.model, self.ema):
                    model.decoder.out.bias.fill_(5.0)
        return stats
    monkeypatch.setattr(Trainer, "step", step_that_collapses)
    run = tmp_path / "rollback"
    path = train(_config(faces, run, steps=10, val_every=5, ckpt_every=10, warmup_steps=0), progress=False)
    err = capsys.readouterr().err
    assert "rolled back to those weights" in err
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_psnr" in r]
    assert val[-1]["rolled_back_to"] == 5 and val[-1]["lr_scale"] == 0.5
    exported = arasfsr.load_model(path)
    assert exported.decoder.out.bias.max() < 4  # the collapsed weights were not exported
    assert read_metadata(path)["training"]["rollbacks"] == 1
    monkeypatch.setattr(Trainer, "step", real_step)
    # off: the collapsed weights stay and are exported
    monkeypatch.setattr(Trainer, "step", step_that_collapses)
    path = train(_config(faces, tmp_path / "off", steps=10, val_every=5, ckpt_every=10, warmup_steps=0,
                         rollback_drop=0), progress=False)
    assert arasfsr.load_model(path).decoder.out.bias.max() > 4
