"""The package API as users of timm / diffusers / torch.hub expect it (issue 12, item 4)."""
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import arasfsr
from arasfsr.model import SRModel

REPO = Path(__file__).resolve().parents[1]


def test_shipped_names_load_and_list_models_names_them():
    assert arasfsr.list_models() == ["arasfsr", "liif", "lte", "arasfsr-no-lfe", "arasfsr-no-gcm", "arasfsr-real",
                                    "arasfsr-heavy", "natural", "arasfsr-fast", "natural-fast", "compare-arasfsr",
                                    "compare-arasfsr-no-lfe", "compare-arasfsr-no-gcm", "compare-liif", "compare-lte"]
    real = arasfsr.load_model("arasfsr-real")
    assert real.config.name == "arasfsr" and real.training_info["degradation"] == "mixed"
    for name in ("arasfsr", "lte"):
        model = arasfsr.load_model(name)
        assert isinstance(model, SRModel) and not model.training
        assert model.training_info.get("model", name) == name  # the shipped file describes itself
    assert arasfsr.load_model("liif").config.name == "liif"
    assert arasfsr.load_model().config.name == "arasfsr"  # today's call keeps working
    path = REPO / "weights" / "lte_small.safetensors"
    assert arasfsr.load_model(path).config == arasfsr.load_model("lte").config
    with pytest.raises(FileNotFoundError, match="shipped model names"):
        arasfsr.load_model("esrgan")


def test_from_pretrained_and_save_pretrained_round_trip(tmp_path, face_image):
    model = SRModel.from_pretrained("lte", device="cpu")
    assert model.config.name == "lte"
    fresh = arasfsr.create_model("arasfsr", preset="tiny").eval()
    assert fresh.training_info == {}  # declared on the model, not only set at load
    facts = {"steps": 0, "data": "none"}
    path = fresh.save_pretrained(tmp_path / "tiny.safetensors", training=facts)
    assert fresh.training_info == facts  # set by save
    loaded = SRModel.from_pretrained(path)
    assert loaded.training_info == facts and loaded.config == fresh.config  # and by load
    assert np.array_equal(np.asarray(arasfsr.upscale(fresh, face_image, scale=2)),
                          np.asarray(arasfsr.upscale(loaded, face_image, scale=2)))


def test_torch_hub_local():
    model = torch.hub.load(str(REPO), "arasfsr", source="local", device="cpu")
    assert isinstance(model, SRModel) and model.config.name == "arasfsr" and model.training_info
    random = torch.hub.load(str(REPO), "lte", source="local", pretrained=False, preset="tiny", device="cpu")
    assert random.config.name == "lte" and random.config.hidden_dim == 32


def test_upscale_leaves_the_model_as_it_found_it(tiny_model, face_image):
    tiny_model.train()
    arasfsr.upscale(tiny_model, face_image, scale=2)
    assert tiny_model.training  # train mode restored
    # and when the work stops part-way (here: a progress callback that raises)
    def stop(done, total):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        arasfsr.upscale(tiny_model, face_image, scale=2, progress=stop)
    assert tiny_model.training
    tiny_model.eval()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_upscale_gives_a_cpu_model_back_on_the_cpu(tiny_model, face_image):
    out_gpu = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2, device="cuda"))
    assert all(p.device.type == "cpu" for p in tiny_model.parameters())
    out_cpu = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2, device="cpu"))
    assert np.abs(out_gpu.astype(int) - out_cpu).max() <= 1


def test_one_device_default():
    """load_model and upscale both default to "auto" (CUDA when available)."""
    assert inspect.signature(arasfsr.load_model).parameters["device"].default == "auto"
    assert inspect.signature(arasfsr.upscale).parameters["device"].default == "auto"
    assert inspect.signature(SRModel.from_pretrained).parameters["device"].default == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(arasfsr.load_model("lte").parameters()).device.type == expected


def test_public_functions_are_typed_and_documented():
    for function in (arasfsr.load_model, arasfsr.save_model, arasfsr.upscale, arasfsr.list_models,
                     arasfsr.output_size, arasfsr.read_image, arasfsr.create_model,
                     SRModel.from_pretrained, SRModel.save_pretrained):
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty, function.__name__
        assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values()
                   if p.name not in ("self", "cls", "overrides")), function.__name__
        assert function.__doc__, function.__name__


@pytest.mark.slow
def test_import_is_cheap():
    """`import arasfsr` loads no torch; a public name loads its module when first used."""
    code = ("import sys, arasfsr; before = 'torch' in sys.modules; arasfsr.upscale;"
            "print(before, 'torch' in sys.modules, arasfsr.__version__)")
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True", arasfsr.__version__]
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        arasfsr.nonsense


def test_create_model_pretrained_loads_the_shipped_weights():
    model = arasfsr.create_model("lte", pretrained=True)
    reference = arasfsr.load_model("lte", device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    with pytest.raises(ValueError, match="shipped"):
        arasfsr.create_model("lte", preset="paper", pretrained=True)


def test_the_five_comparison_files_were_trained_alike():
    """Issue 19: the shipped like-for-like files share one recipe, budget, data and sampling, and
    differ in the family alone (and the model each family builds)."""
    from arasfsr.weights import COMPARISON_FAMILIES
    records = {family: arasfsr.load_model(f"compare-{family}").training_info for family in COMPARISON_FAMILIES}
    shared = ("recipe", "total_steps", "steps", "data", "degradation", "batch_size", "num_queries", "learning_rate",
              "warmup_steps", "input_sizes", "scale_range", "seed", "ema_decay", "kl_weight")
    for key in shared:
        values = {family: record.get(key) for family, record in records.items()}
        assert len({repr(v) for v in values.values()}) == 1, f"{key} differs: {values}"
    first = records["arasfsr"]
    assert first["recipe"] == f"compare-{first['total_steps']}" and first.get("init_from") is None  # from scratch
    assert {family: record["model"] for family, record in records.items()} == {f: f for f in COMPARISON_FAMILIES}

