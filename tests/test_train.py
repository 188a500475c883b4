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


def test_the_record_names_the_recipe_and_counts_every_leg(faces, tmp_path):
    """`recipe` and `total_steps` (issue 19): a continuation adds its steps to its start's total."""
    first = train(_config(faces, tmp_path / "a", steps=3, val_every=3, recipe="two-legs", seed=5), progress=False)
    info = read_metadata(first)["training"]
    assert (info["recipe"], info["total_steps"], info["seed"]) == ("two-legs", 3, 5)
    second = train(_config(faces, tmp_path / "b", steps=2, val_every=2, recipe="two-legs", init_from=str(first)),
                   progress=False)
    info = read_metadata(second)["training"]
    assert (info["recipe"], info["steps"], info["total_steps"]) == ("two-legs", 2, 5)
    assert info["init_from"]["total_steps"] == 3 and info["init_from"]["recipe"] == "two-legs"


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


class _CudaGenerators:
    """The CUDA generators of `devices` GPUs, for a machine without one: each is a real CPU
    `torch.Generator`, so its state is a real ByteTensor that moves when numbers are drawn. Only the
    four `torch.cuda` functions the checkpoint code calls are replaced; on a machine with CUDA the
    tests use the real generators instead."""

    def __init__(self, devices: int = 2, seed: int = 123):
        self.generators = [torch.Generator().manual_seed(seed + i) for i in range(devices)]

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.generators))
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [g.get_state() for g in self.generators])
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self.set_rng_state_all)

    def set_rng_state_all(self, states) -> None:
        for generator, state in zip(self.generators, states):
            generator.set_state(state)

    def draw(self) -> None:
        for generator in self.generators:
            torch.rand(16, generator=generator)


def _cuda_generators(monkeypatch):
    """(get_states, draw): the real CUDA generators when there is a GPU, else `_CudaGenerators`."""
    if torch.cuda.is_available():
        return (lambda: [s.cpu() for s in torch.cuda.get_rng_state_all()],
                lambda: [torch.rand(16, device=f"cuda:{i}") for i in range(torch.cuda.device_count())])
    fake = _CudaGenerators()
    fake.install(monkeypatch)
    return (lambda: [g.get_state() for g in fake.generators]), fake.draw


def test_checkpoint_keeps_the_cuda_rng_state_and_resume_restores_it(faces, tmp_path, monkeypatch, capsys):
    """With CUDA, last.pt carries every GPU's RNG state (readable with weights_only=True) beside the
    CPU's, and a resume puts it back; the same checkpoint resumed without CUDA loads with a note."""
    from arasfsr.checkpoints import load_checkpoint
    from arasfsr.train import Trainer
    cfg = _config(faces, tmp_path / "cuda_rng", device="cpu")
    cuda_states, draw = _cuda_generators(monkeypatch)
    trainer = Trainer(cfg, progress=False)
    draw()  # the stream has moved on since the seed, as after some training steps
    saved = cuda_states()
    trainer.checkpoint()
    state = load_checkpoint(trainer.ckpt_path)  # weights_only=True
    assert len(state["cuda_rng"]) == 1 and len(state["cuda_rng"][0]) == len(saved)  # one rank, every GPU
    assert all(torch.equal(a, b) for a, b in zip(state["cuda_rng"][0], saved))
    draw()
    assert not all(torch.equal(a, b) for a, b in zip(cuda_states(), saved))  # the stream really moved
    Trainer(cfg, progress=False, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(cuda_states(), saved)), "resume did not restore the CUDA stream"
    assert "CUDA" not in capsys.readouterr().err  # restored exactly: nothing to say
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same checkpoint on a CPU-only machine
    resumed = Trainer(cfg, progress=False, resume=True)
    assert resumed.step_index == 0 and "no GPU is visible" in capsys.readouterr().err


def test_a_checkpoint_without_cuda_rng_state_resumes(faces, tmp_path, monkeypatch, capsys):
    """A checkpoint without "cuda_rng" (an older one, or one written on a CPU) resumes, on a CPU exactly
    as an unbroken run, and on a CUDA machine with a one-line note that the CUDA stream restarts."""
    from arasfsr.checkpoints import load_checkpoint, save_atomic
    from arasfsr.train import Trainer
    # a constant learning rate, so that the 3-step first leg is the first half of the 6-step run
    settings = dict(steps=6, ckpt_every=3, val_every=100, warmup_steps=0, lr_decay_at=1.0, device="cpu")
    straight = train(_config(faces, tmp_path / "straight", **settings), progress=False)
    run = tmp_path / "old"
    train(_config(faces, run, **{**settings, "steps": 3}), progress=False)
    state = load_checkpoint(run / "last.pt")
    assert state["step"] == 3
    if torch.cuda.is_available():
        assert state["cuda_rng"] is not None
    else:
        assert state["cuda_rng"] is None  # written without CUDA: nothing to keep
    del state["cuda_rng"]  # as a checkpoint written before the field existed
    save_atomic(state, run / "last.pt")
    capsys.readouterr()
    _, draw = _cuda_generators(monkeypatch)  # resumed where CUDA is present
    trainer = Trainer(_config(faces, run, **settings), progress=False, resume=True)
    note = [line for line in capsys.readouterr().err.splitlines() if "CUDA" in line]
    assert len(note) == 1 and "restarts" in note[0], note
    assert trainer.step_index == 3
    monkeypatch.undo()  # train the rest on this machine as it is
    resumed = trainer.run()
    a, b = load_file(str(resumed)), load_file(str(straight))
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed CPU run diverged from the unbroken one"


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


def test_validate_measures_and_never_rolls_back(faces, tmp_path):
    """`Trainer.validate` only measures: even after a collapse below the kept best, the weights,
    the EMA and the learning-rate scale stay as they are (the rollback is the keeper's, called by
    `run`)."""
    from arasfsr.train import Trainer
    trainer = Trainer(_config(faces, tmp_path / "validate", warmup_steps=0), progress=False)
    first = trainer.validate()
    assert set(first) == {"val_psnr", "ema_val_psnr"} and np.isfinite(first["val_psnr"])
    assert not trainer.keeper.observe(1, first, trainer.model, trainer.optimizer, trainer.ema)  # kept as the best
    with torch.no_grad():
        for model in (trainer.model, trainer.ema):
            model.decoder.out.bias.fill_(5.0)  # a collapse, far more than rollback_drop below the best
    before = {k: v.clone() for k, v in [*trainer.model.state_dict().items(),
                                        *(("ema." + k, v) for k, v in trainer.ema.state_dict().items())]}
    second, third = trainer.validate(), trainer.validate()
    assert second == third and second["val_psnr"] < first["val_psnr"] - trainer.cfg.rollback_drop
    after = {**trainer.model.state_dict(), **{"ema." + k: v for k, v in trainer.ema.state_dict().items()}}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert trainer.keeper.lr_scale == 1.0 and "rolled_back_to" not in second


def test_weight_keeper_rolls_back_below_the_drop():
    from arasfsr.checkpoints import WeightKeeper, ema_update
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = torch.nn.Linear(3, 2).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    ema_update(ema, model, 0.999, 0)  # step 0: decay 0.1, the EMA moves 90% of the way
    best = {k: v.clone() for k, v in model.state_dict().items()}
    best_ema = {k: v.clone() for k, v in ema.state_dict().items()}
    keeper = WeightKeeper(rollback_drop=0.5)
    assert not keeper.observe(5, {"val_psnr": 30.0, "ema_val_psnr": 29.0}, model, optimizer, ema)
    assert keeper.best["step"] == 5 and keeper.best["val"] == 30.0
    with torch.no_grad():
        for p in (*model.parameters(), *ema.parameters()):
            p.add_(1.0)
    within = {"val_psnr": 29.6}
    assert not keeper.observe(6, within, model, optimizer, ema)  # 0.4 dB below: kept going
    assert "rolled_back_to" not in within and not torch.equal(model.weight, best["weight"])
    below = {"val_psnr": 29.0, "ema_val_psnr": 29.4}  # the better of the two is 0.6 dB below the best
    assert keeper.observe(7, below, model, optimizer, ema)
    assert below["rolled_back_to"] == 5 and below["lr_scale"] == keeper.lr_scale == 0.5 and keeper.rollbacks == 1
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, best_ema[k]) for k, v in ema.state_dict().items())
    restored = WeightKeeper(rollback_drop=0.5)  # what last.pt holds of it comes back
    restored.load_state_dict(keeper.state_dict())
    assert restored.lr_scale == 0.5 and restored.best["step"] == 5
    off = WeightKeeper(rollback_drop=0)
    assert not off.observe(1, {"val_psnr": 30.0}, model, optimizer, ema)
    assert not off.observe(2, {"val_psnr": 1.0}, model, optimizer, ema) and off.best is None
