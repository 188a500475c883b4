"""The network is the paper's network: pins of the two facts checked against the authors' code."""
import json

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

import arasfsr
from arasfsr.coords import grid_coord, make_coord
from arasfsr.decoder import local_ensemble_corners
from arasfsr.inference import render
from arasfsr.weights import read_metadata


def test_lfe_residual_blocks_use_plain_relu():
    model = arasfsr.create_model("arasfsr", preset="tiny")
    blocks = [m for m in model.lfe.modules() if type(m).__name__ == "ResBlock"]
    assert blocks and all(isinstance(b.body[1], nn.ReLU) for b in blocks)
    # and numerically: a block's output is conv2(relu(conv1(x))) + x, negatives cut to zero
    block = blocks[0]
    x = torch.randn(1, block.body[0].in_channels, 5, 5)
    expected = x + block.body[2](torch.relu(block.body[0](x)))
    assert torch.allclose(block(x), expected, atol=1e-6)


def test_format_1_files_load_as_the_leaky_network_they_were_trained_as(tmp_path):
    torch.manual_seed(0)
    leaky = arasfsr.create_model("arasfsr", preset="tiny", lfe_activation="leaky_relu").eval()
    config = dict(leaky.config.to_dict(), kl_weight=0.0)
    del config["lfe_activation"]  # a format-1 config has no such key and holds kl_weight
    tensors = {k: v.contiguous() for k, v in leaky.state_dict().items()}
    path = tmp_path / "old.safetensors"
    save_file(tensors, str(path), metadata={"format": "arasfsr", "format_version": "1",
                                           "config": json.dumps(config), "training": "{}"})
    assert read_metadata(path)["config"]["lfe_activation"] == "leaky_relu"
    loaded = arasfsr.load_model(path)
    blocks = [m for m in loaded.lfe.modules() if type(m).__name__ == "ResBlock"]
    assert all(isinstance(b.body[1], nn.LeakyReLU) for b in blocks)
    lr = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(render(loaded, lr, (20, 15)), render(leaky, lr, (20, 15)))


def test_render_uses_the_make_coord_rule():
    for shape in [(144, 120), (37, 23), (7, 300)]:
        flat = torch.arange(shape[0] * shape[1])
        assert torch.equal(grid_coord(shape, flat), make_coord(shape))


def test_odd_scale_ties_on_lr_centres_are_decided_by_rule_not_rounding():
    # x3 from 48x40: every third output centre falls exactly on an LR centre, also on the last
    # LR row/column, where both corners of an axis read the same (clamped) pixel.
    h, w = 48, 40
    coord = make_coord((3 * h, 3 * w)).unsqueeze(0)
    index, _, rel, weight = local_ensemble_corners(coord, (h, w))
    assert torch.allclose(weight.sum(0), torch.ones(1, coord.shape[1]))
    # On an LR centre, the blend must read exactly that LR pixel, whatever the rounding:
    # the weights of the corners reading the pixel under the query sum to 1.
    on_centre = make_coord((h, w))  # queries exactly at LR centres
    index, _, rel, weight = local_ensemble_corners(on_centre.unsqueeze(0), (h, w))
    own = torch.arange(h * w).view(1, -1)
    own_weight = (weight * (index == own)).sum(0)
    assert torch.allclose(own_weight, torch.ones_like(own_weight), atol=1e-6)
    # A perturbation of a few ulps in the coordinate changes nothing measurable.
    nudged = on_centre + 3 * torch.finfo(torch.float32).eps
    _, _, _, weight2 = local_ensemble_corners(nudged.unsqueeze(0), (h, w))
    own2 = (weight2 * (index == own)).sum(0)
    assert torch.allclose(own2, own_weight, atol=1e-4)


def test_x1_on_the_lr_grid_interpolates_nothing():
    # with queries at the LR centres, the skip and the blend each read one pixel: a model whose
    # decoder outputs zero returns the input exactly (up to float rounding)
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr-no-lfe", preset="tiny").eval()
    with torch.no_grad():
        model.decoder.out.weight.zero_()
        model.decoder.out.bias.zero_()
        lr = torch.rand(1, 3, 11, 9)
        out = render(model, lr, (11, 9))
    assert np.allclose(out.numpy(), lr[0].permute(1, 2, 0).numpy(), atol=1e-6)
