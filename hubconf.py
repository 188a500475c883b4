"""torch.hub entry points: `torch.hub.load(repo_dir, "arasfsr", source="local")`.

Each entry returns a model with the shipped weights (see `arasfsr.list_models()`), or a random
one with `pretrained=False`. Loading a weight file runs no code (safetensors + a checked config).
"""
dependencies = ["torch", "numpy", "PIL", "safetensors"]


def _entry(name: str, pretrained: bool = True, device: str = "auto", preset: str = "small"):
    from arasfsr.model import create_model
    from arasfsr.weights import load_model

    if pretrained:
        return load_model(name, device=device)
    from arasfsr.inference import resolve_device
    return create_model(name, preset=preset).to(resolve_device(device)).eval()


def arasfsr(pretrained: bool = True, device: str = "auto", preset: str = "small"):
    """ARASFSR (LFE + GCM); `preset` only matters with pretrained=False."""
    return _entry("arasfsr", pretrained, device, preset)


def liif(pretrained: bool = True, device: str = "auto", preset: str = "small"):
    """LIIF, the baseline ARASFSR extends."""
    return _entry("liif", pretrained, device, preset)


def lte(pretrained: bool = True, device: str = "auto", preset: str = "small"):
    """LTE (local texture estimator)."""
    return _entry("lte", pretrained, device, preset)


def arasfsr_no_lfe(pretrained: bool = True, device: str = "auto", preset: str = "small"):
    """The ablation without local frequency estimation."""
    return _entry("arasfsr-no-lfe", pretrained, device, preset)


def arasfsr_no_gcm(pretrained: bool = True, device: str = "auto", preset: str = "small"):
    """The ablation without global coordinate modulation."""
    return _entry("arasfsr-no-gcm", pretrained, device, preset)


def arasfsr_real(pretrained: bool = True, device: str = "auto", preset: str = "small"):
    """ARASFSR trained on degraded inputs (blur, noise, JPEG 30-95): for ordinary photos."""
    if not pretrained:
        return _entry("arasfsr", pretrained, device, preset)
    return _entry("arasfsr-real", pretrained, device, preset)
