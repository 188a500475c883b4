"""arasfsr-fast (issue 21): the per-LR-pixel network decoder, distillation, the shipped student, the demo's use."""

import numpy as np
import pytest
import test_train
import torch
from PIL import Image

import arasfsr
from arasfsr.coords import make_coord
from arasfsr.model import ModelConfig, create_model, grow_state_dict
from arasfsr.train import TrainConfig, Trainer
from arasfsr.weights import default_weights_path, family_of, read_metadata, save_model

FAST_FILE = default_weights_path("arasfsr-fast")
faces = test_train.faces  # the synthetic face folder (a module-scoped fixture)


def _queries(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    coord = torch.rand(2, n, 2, generator=g) * 2 - 1
    cell = torch.full((2, n, 2), 2 / 70.0)
    return coord, cell


@pytest.mark.parametrize("use_gcm", [True, False])
@pytest.mark.parametrize("family", ["arasfsr-fast", "arasfsr-fast-mod", "arasfsr-fast-deep", "arasfsr-fast-rel",
                                    "arasfsr-fast-blend", "arasfsr-fast-blend4"])
def test_pixel_network_fast_path_equals_reference(use_gcm, family):
    torch.manual_seed(0)
    model = create_model(family, preset="tiny", use_gcm=use_gcm).eval()
    assert model.decoder.pixel_net is not None and model.decoder.layers[0].in_features == (6 if use_gcm else 4)
    with torch.no_grad():  # the grown parts start at zero: give them weights, or they test nothing
        for p in model.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    features = model.encode(torch.rand(2, 3, 14, 17))
    coord, cell = _queries()
    with torch.no_grad():
        fast = model.query(features, coord, cell, fast=True)
        reference = model.query(features, coord, cell, fast=False)
    trained_path = model.query(features, coord, cell, fast=True)  # the autograd path, as training runs it
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(trained_path.detach(), reference, atol=1e-5, rtol=0)


def test_family_and_old_configs():
    fast = create_model("arasfsr-fast").config.to_dict()
    assert family_of(fast) == "arasfsr-fast" and fast["projection_hidden"] > 0
    plain = create_model("arasfsr").config.to_dict()
    assert family_of(plain) == "arasfsr"
    old = {k: v for k, v in plain.items() if k != "projection_hidden"}  # files written before the field
    assert family_of(old) == "arasfsr" and ModelConfig.from_dict(old).projection_hidden == 0
    with pytest.raises(ValueError, match="LTE has no projection_hidden"):
        ModelConfig(name="lte", use_lfe=False, use_gcm=False, projection_hidden=8)


@pytest.mark.parametrize("family", ["arasfsr-fast-mod", "arasfsr-fast-deep", "arasfsr-fast-rel"])
def test_a_student_grows_into_more_pixel_capacity_and_computes_the_same(family):
    torch.manual_seed(1)
    source = create_model("arasfsr-fast", preset="tiny").eval()
    with torch.no_grad():
        for p in source.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    grown_model = create_model(family, preset="tiny").eval()
    grown = grow_state_dict(grown_model, source)
    assert "decoder.pixel_net.2.weight" in grown
    assert any(name.startswith("decoder.pixel_blocks") for name in grown) == (family == "arasfsr-fast-deep")
    lr = torch.rand(2, 3, 11, 13)
    coord, cell = _queries()
    with torch.no_grad():
        same = grown_model(lr, coord, cell)
        torch.testing.assert_close(same, source(lr, coord, cell), atol=1e-6, rtol=0)
        for p in grown_model.decoder.pixel_net[2].parameters():  # the new terms are read: changing them changes the output
            p[source.config.hidden_dim:].add_(0.1)
        assert (grown_model(lr, coord, cell) - same).abs().max() > 1e-3
        if grown_model.decoder.rel_features is not None:  # so are the offset's Fourier features
            before = grown_model(lr, coord, cell)
            grown_model.decoder.rel_features.weight.add_(0.1)
            assert (grown_model(lr, coord, cell) - before).abs().max() > 1e-3
    with pytest.raises(ValueError, match="cannot grow"):  # only more capacity, nothing else
        grow_state_dict(create_model(family, preset="tiny", hidden_dim=40), source)
    with pytest.raises(ValueError, match="cannot grow"):
        grow_state_dict(create_model("arasfsr-fast", preset="tiny"), grown_model)
    with pytest.raises(ValueError, match="need a pixel network"):
        ModelConfig(pixel_modulation=True)


def _line_across_pixel_centres(h=9, w=11, n=40001):
    """Queries along a row, through every LR pixel centre and cell edge of an (h, w) grid."""
    x = torch.linspace(-0.999, 0.999, n)
    coord = torch.stack([torch.full_like(x, 0.13), x], dim=-1).view(1, n, 2)
    return coord, torch.full((1, n, 2), 2 / 70.0)


@pytest.mark.parametrize("use_gcm", [True, False])
def test_blending_after_the_first_layer_is_one_evaluation_per_query_and_continuous(use_gcm):
    torch.manual_seed(2)
    model = create_model("arasfsr-fast-blend", preset="tiny", use_gcm=use_gcm).eval()
    decoder = model.decoder
    with torch.no_grad():
        for p in decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        decoder.pixel_net[2].weight.mul_(10)  # LR pixels that differ a lot: a jump between them would show
    latent = model.encode(torch.rand(1, 3, 9, 11)).latent
    projection = decoder.project(latent)
    coord, cell = _line_across_pixel_centres()
    calls = []  # rows through the second hidden layer: one per query, not four
    hook = decoder.layers[1].register_forward_hook(lambda mod, args, out: calls.append(args[0].shape))
    with torch.enable_grad():
        pred = decoder.forward_fast(projection, (9, 11), coord, cell)[0].detach()
    hook.remove()
    assert calls and all(shape[:-1].numel() == coord.shape[1] for shape in calls), calls
    # continuous: a corner changes its LR pixel where its blend weight is zero, so neighbouring queries
    # (1/20000 of the image apart) differ by a small step; with equal weights the output jumps there
    steps = (pred[1:] - pred[:-1]).abs().max().item()
    original = decoder._first_layer

    def equal_weights(*args, **kwargs):
        x, weight, mods = original(*args, **kwargs)
        return x, torch.full_like(weight, 0.25), mods

    decoder._first_layer = equal_weights
    try:
        with torch.no_grad():
            jumpy = decoder.forward_fast(projection, (9, 11), coord, cell)[0]
    finally:
        del decoder._first_layer
    jump = (jumpy[1:] - jumpy[:-1]).abs().max().item()
    assert jump > 10 * steps, (steps, jump)


def test_blend_hidden_needs_a_pixel_network_and_no_modulation():
    with pytest.raises(ValueError, match="need a pixel network"):
        ModelConfig(blend_hidden=True)
    with pytest.raises(ValueError, match="do not combine"):
        ModelConfig(projection_hidden=8, blend_hidden=True, pixel_modulation=True)
    assert family_of(create_model("arasfsr-fast-blend", preset="tiny").config.to_dict()) == "arasfsr-fast-blend"
    old = {k: v for k, v in create_model("arasfsr-fast").config.to_dict().items() if k != "blend_hidden"}
    assert family_of(old) == "arasfsr-fast" and not ModelConfig.from_dict(old).blend_hidden


def test_old_weight_files_still_load():
    model = arasfsr.load_model("arasfsr")
    assert model.config.projection_hidden == 0 and model.decoder.pixel_net is None


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_model(create_model("arasfsr", preset="tiny"), path, training={"steps": 7, "recipe": "t"})
    return path


def _distil(faces, teacher, out, steps, model="arasfsr-fast"):
    cfg = TrainConfig(model=model, preset="tiny", data=str(faces), out=str(out), steps=steps,
                      batch_size=4, num_queries=256, val_every=steps, ckpt_every=steps, input_sizes=(12, 24),
                      threads=1, teacher=str(teacher), warmup_steps=5, learning_rate=2e-3)
    return Trainer(cfg, progress=False)


def _gap(student, teacher_model, seed=9):
    """Mean |student - teacher| on fixed random inputs and queries."""
    g = torch.Generator().manual_seed(seed)
    lr = torch.rand(2, 3, 16, 16, generator=g)
    coord, cell = _queries(500, seed)
    with torch.no_grad():
        return (student(lr, coord, cell) - teacher_model(lr, coord, cell)).abs().mean().item()


@pytest.mark.parametrize("family", ["arasfsr-fast", "arasfsr-fast-blend"])
def test_distillation_learns_the_teacher_and_keeps_its_encoder(faces, teacher, tmp_path, family):
    trainer = _distil(faces, teacher, tmp_path / "run", steps=60, model=family)
    teacher_model = trainer.teacher
    before = _gap(trainer.model.eval(), teacher_model)
    decoder_before = {k: v.clone() for k, v in trainer.model.decoder.state_dict().items()}
    path = trainer.run()
    student = arasfsr.load_model(path)
    after = _gap(student, teacher_model)
    assert after < 0.5 * before, (before, after)  # it learned the teacher's output
    for part in ("encoder", "lfe"):  # frozen: still the teacher's, bit for bit
        mine, theirs = getattr(student, part).state_dict(), getattr(teacher_model, part).state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert any(not torch.equal(v, student.decoder.state_dict()[k]) for k, v in decoder_before.items())
    info = read_metadata(path)["training"]
    assert info["teacher"] == {"file": "teacher.safetensors", "steps": 7, "total_steps": 7, "recipe": "t"}
    assert family_of(read_metadata(path)["config"]) == family


def test_distillation_resumes(faces, teacher, tmp_path):
    _distil(faces, teacher, tmp_path / "run", steps=4).run()
    cfg = _distil(faces, teacher, tmp_path / "other", steps=4).cfg
    cfg.out, cfg.steps = str(tmp_path / "run"), 6
    trainer = Trainer(cfg, progress=False, resume=True)
    assert trainer.step_index == 4
    assert all(not p.requires_grad for p in trainer.model.encoder.parameters())
    trainer.run()
    assert read_metadata(tmp_path / "run" / "arasfsr-fast_tiny.safetensors")["training"]["steps"] == 6


def test_a_student_continues_from_its_file_and_a_foreign_one_is_refused(faces, teacher, tmp_path):
    first = _distil(faces, teacher, tmp_path / "run", steps=6).run()
    cfg = _distil(faces, teacher, tmp_path / "more", steps=3).cfg
    cfg.init_from = str(first)
    trainer = Trainer(cfg, progress=False)  # the student's decoder goes on from where it was
    student = arasfsr.load_model(first)
    mine = trainer.model.decoder.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in student.decoder.state_dict().items())
    info = read_metadata(trainer.run())["training"]
    assert info["init_from"]["file"] == first.name and info["teacher"]["file"] == "teacher.safetensors"
    stranger = tmp_path / "stranger.safetensors"  # a student of another teacher: its encoder differs
    torch.manual_seed(11)
    save_model(create_model("arasfsr-fast", preset="tiny"), stranger)
    cfg.init_from, cfg.out = str(stranger), str(tmp_path / "bad")
    with pytest.raises(ValueError, match="its encoder is not the teacher's"):
        Trainer(cfg, progress=False)


def test_a_student_continues_grown_and_says_so(faces, teacher, tmp_path):
    first = _distil(faces, teacher, tmp_path / "run", steps=4).run()
    cfg = _distil(faces, teacher, tmp_path / "grown", steps=3, model="arasfsr-fast-deep").cfg
    cfg.init_from = str(first)
    trainer = Trainer(cfg, progress=False)
    source = arasfsr.load_model(first)
    lr = torch.rand(1, 3, 12, 12)
    coord, cell = _queries(200)
    with torch.no_grad():  # it starts as the file it grew from (z = mu: no sampling in the comparison)
        mine = trainer.model.query(trainer.model.encode(lr, sample=False), coord[:1], cell[:1])
        torch.testing.assert_close(mine, source(lr, coord[:1], cell[:1]), atol=1e-6, rtol=0)
    info = read_metadata(trainer.run())["training"]
    assert info["init_from"]["file"] == first.name
    assert "decoder.pixel_net.2.weight" in info["init_from"]["grown"]
    cfg.model, cfg.out = "arasfsr-fast", str(tmp_path / "shrunk")  # a grown file does not fit a plain student
    cfg.init_from = str(tmp_path / "grown" / "arasfsr-fast-deep_tiny.safetensors")
    with pytest.raises(ValueError, match="does not fit"):
        Trainer(cfg, progress=False)


def test_a_teacher_with_another_encoder_is_refused(faces, tmp_path):
    other = tmp_path / "small.safetensors"
    save_model(create_model("arasfsr", preset="small"), other)
    with pytest.raises(ValueError, match="its encoder must be the student's.*encoder_channels 32 vs 16"):
        _distil(faces, other, tmp_path / "run", steps=2)
    lte = tmp_path / "lte.safetensors"
    save_model(create_model("lte", preset="tiny"), lte)
    with pytest.raises(ValueError, match="lte teacher"):
        _distil(faces, lte, tmp_path / "run2", steps=2)


def test_an_lte_teaches_a_liif_style_student(faces, tmp_path):
    torch.manual_seed(4)
    lte = tmp_path / "lte.safetensors"
    save_model(create_model("lte", preset="tiny"), lte)
    trainer = _distil(faces, lte, tmp_path / "run", steps=30, model="natural-fast")
    assert trainer.model.config.name == "liif" and trainer.model.config.use_skip
    before = _gap(trainer.model.eval(), trainer.teacher)
    student = arasfsr.load_model(trainer.run())
    assert _gap(student, trainer.teacher) < 0.7 * before
    assert all(torch.equal(v, trainer.teacher.encoder.state_dict()[k]) for k, v in student.encoder.state_dict().items())
    cfg = trainer.cfg
    cfg.model, cfg.out = "lte", str(tmp_path / "run2")
    with pytest.raises(ValueError, match="its encoder must be the student's"):
        Trainer(cfg, progress=False)


# ---- the shipped student ------------------------------------------------------------------------
needs_fast = pytest.mark.skipif(not FAST_FILE.exists(), reason="arasfsr-fast weights not shipped")


@needs_fast
def test_shipped_student_is_smaller_and_keeps_the_default_encoder():
    from torch.utils.flop_counter import FlopCounterMode
    fast, default = arasfsr.load_model("arasfsr-fast"), arasfsr.load_model("arasfsr")
    for part in ("encoder", "lfe"):
        theirs = getattr(default, part).state_dict()
        assert all(torch.equal(getattr(fast, part).state_dict()[k], theirs[k]) for k in theirs)
    features = {name: m.encode(torch.rand(1, 3, 16, 16)) for name, m in (("fast", fast), ("default", default))}
    coord = make_coord((64, 64)).view(1, -1, 2)
    cell = torch.full_like(coord, 2 / 64)
    counts = {}
    for name, m in (("fast", fast), ("default", default)):
        with torch.enable_grad(), FlopCounterMode(display=False) as counter:
            m.query(features[name], coord, cell)
        counts[name] = counter.get_total_flops()
    assert counts["fast"] * 8 < counts["default"]  # the per-query network: 0.09 against 0.90 MFLOP per pixel
    info = read_metadata(FAST_FILE)["training"]
    assert info["teacher"]["file"] == "arasfsr_small.safetensors" and info["recipe"].startswith("distil-")


@needs_fast
def test_shipped_student_stays_close_to_the_default_on_a_face():
    """On a held-out-like face (the demo's public-domain portrait), x4: within 0.5 dB of ARASFSR and
    above bicubic (bench_fast.py measures the test splits)."""
    from arasfsr.metrics import psnr_y
    from demo.examples import prepare_examples
    hr = Image.open(prepare_examples()["grace_hopper_64"]).convert("RGB").resize((128, 128), Image.BICUBIC)
    lr = hr.resize((32, 32), Image.BICUBIC)
    scores = {name: psnr_y(arasfsr.upscale(name if name == "bicubic" else arasfsr.load_model(name), lr,
                                           size=(128, 128)), hr) for name in ("bicubic", "arasfsr", "arasfsr-fast")}
    assert scores["arasfsr-fast"] > scores["bicubic"] + 0.5, scores
    assert scores["arasfsr-fast"] > scores["arasfsr"] - 0.5, scores


# ---- the demo -----------------------------------------------------------------------------------
@needs_fast
def test_auto_draws_large_clean_outputs_with_the_student_and_previews_mid_sizes(tmp_path):
    from demo import limits, models
    face = tmp_path / "face.png"
    Image.fromarray((np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)).save(face)
    small, _ = models.resolve(models.AUTO, face, out_pixels=256 * 256)
    large, note = models.resolve(models.AUTO, face, out_pixels=limits.FAST_ABOVE_PIXELS + 1)
    assert (small, large) == (models.DEFAULT_MODEL, models.FAST)
    assert models.FULL_BUTTON in note and limits.pixels_text(limits.FAST_ABOVE_PIXELS) in note
    assert models.resolve("ARASFSR", face, out_pixels=limits.FAST_ABOVE_PIXELS + 1)[0] == "ARASFSR"  # asked for
    assert models.preview_choice(models.DEFAULT_MODEL, limits.PREVIEW_ABOVE_PIXELS + 1) == models.FAST
    assert models.preview_choice(models.DEFAULT_MODEL, limits.PREVIEW_ABOVE_PIXELS) is None
    assert models.preview_choice(models.FAST, limits.FAST_ABOVE_PIXELS + 1) is None


@needs_fast
def test_face_tab_yields_a_preview_then_the_full_result(tmp_path):
    from demo import models, ui
    face = tmp_path / "face.png"
    Image.fromarray((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)).save(face)
    runs = list(ui.run_upscale(str(face), 12.0, "ARASFSR", progress=None))  # 576 x 576: over the preview size
    assert len(runs) == 2
    assert runs[0][4].startswith("**Preview** by " + models.FAST) and runs[0][6]["model"] == models.FAST
    assert runs[1][6]["model"] == "ARASFSR" and "**ARASFSR**" in runs[1][4]
    preview, final = Image.open(runs[0][0]), Image.open(runs[1][0])
    assert preview.size == final.size == (576, 576)
    assert not np.array_equal(np.asarray(preview), np.asarray(final))  # two models drew them
    small = list(ui.run_upscale(str(face), 4.0, "ARASFSR", progress=None))
    assert len(small) == 1  # 192 x 192: no preview
    full = list(ui.run_full(str(face), 4.0, models.AUTO, progress=None))
    assert full[-1][6]["model"] == "ARASFSR"


@pytest.mark.skipif(not default_weights_path("natural-fast").exists(), reason="natural-fast weights not shipped")
def test_whole_photos_get_the_distilled_background_by_default(tmp_path):
    import argparse

    from arasfsr import cli, weights
    student, teacher = arasfsr.load_model("natural-fast"), arasfsr.load_model("natural")
    assert family_of(student.config.to_dict()) == "natural-fast"
    assert all(torch.equal(v, teacher.encoder.state_dict()[k]) for k, v in student.encoder.state_dict().items())
    assert read_metadata(default_weights_path("natural-fast"))["training"]["teacher"]["file"] == "natural_small.safetensors"
    assert weights.background_name() == "natural-fast"
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(2).random((40, 56, 3)) * 255).astype(np.uint8)).save(photo)
    for asked, expected in (("auto", "natural-fast"), ("natural", "natural"), ("natural-fast", "natural-fast")):
        model, words = cli._background(argparse.Namespace(background=asked, device="cpu"))(photo)
        assert words.endswith(f"({expected})") and model.config.name == ("liif" if expected == "natural-fast" else "lte")
    from demo import models
    drawn, words = models.background(str(photo))
    assert drawn.config.name == "liif" and "natural-fast" in words
