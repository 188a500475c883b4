"""Model families and size presets: plain data, torch-free (the command line reads them for its
choices before it imports torch). `arasfsr.model` re-exports both."""
from __future__ import annotations

MODEL_NAMES = ("arasfsr", "liif", "lte")

# Sizes only; the structure is the same in every preset.
PRESETS = {
    # the paper's sizes: EDSR-baseline 64 ch x 16 blocks, decoder 256 x 4, LFE 64 ch x 4 blocks
    "paper": dict(encoder_channels=64, encoder_blocks=16, hidden_dim=256, hidden_layers=4,
                  lfe_channels=64, lfe_blocks=4, lfe_latent_channels=64),
    # the app's default: 128 -> 512 in about two seconds on a 2-core CPU, trains on a CPU
    "small": dict(encoder_channels=32, encoder_blocks=8, hidden_dim=128, hidden_layers=4,
                  lfe_channels=32, lfe_blocks=2, lfe_latent_channels=32),
    # for tests and a first run: seconds per hundred steps
    "tiny": dict(encoder_channels=16, encoder_blocks=2, hidden_dim=32, hidden_layers=4,
                 lfe_channels=16, lfe_blocks=1, lfe_latent_channels=16),
}

# What each family switches on; ablations are ARASFSR with one switch off.
FAMILIES = {
    "arasfsr": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True),
    "arasfsr-no-lfe": dict(name="arasfsr", use_lfe=False, use_gcm=True, use_skip=True),
    "arasfsr-no-gcm": dict(name="arasfsr", use_lfe=True, use_gcm=False, use_skip=True),
    "arasfsr-no-skip": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=False),
    # the render-fast student (issue 21): the small encoder and LFE of `arasfsr`, frozen, and a decoder
    # with a per-LR-pixel network in front of a narrow per-query MLP, distilled from `arasfsr`
    "arasfsr-fast": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True,
                         hidden_dim=48, hidden_layers=3, projection_hidden=128),
    # experiments (issue 21, results/fast.md "Growing the student"; not shipped): the same student grown
    # into a pixel term for every hidden layer (-mod), also a residual block in the pixel network
    # (-deep), or also Fourier features of the query's offset (-rel)
    "arasfsr-fast-mod": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True,
                             hidden_dim=48, hidden_layers=3, projection_hidden=128, pixel_modulation=True),
    "arasfsr-fast-deep": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True,
                              hidden_dim=48, hidden_layers=3, projection_hidden=128, pixel_modulation=True,
                              projection_blocks=1),
    "arasfsr-fast-rel": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True,
                             hidden_dim=48, hidden_layers=3, projection_hidden=128, pixel_modulation=True,
                             rel_frequencies=4),
    # issue 21, results/fast.md "One evaluation per query": the corners blended after the first hidden
    # layer, so the rest of the MLP runs once per query and can be wider (-blend) or deeper (-blend4) at
    # about the 48-wide student's cost; distilled from scratch. -blend is the shipped `arasfsr-fast` file
    # from release 0.9 on (weights.DEFAULT_WEIGHTS maps the name); -blend4 is an experiment
    "arasfsr-fast-blend": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True,
                               hidden_dim=80, hidden_layers=3, projection_hidden=128, blend_hidden=True),
    "arasfsr-fast-blend4": dict(name="arasfsr", use_lfe=True, use_gcm=True, use_skip=True,
                                hidden_dim=64, hidden_layers=4, projection_hidden=128, blend_hidden=True),
    # the same for photographs: a LIIF-style student of the LTE `natural` weights (no LFE, no GCM)
    "natural-fast": dict(name="liif", use_lfe=False, use_gcm=False, use_skip=True,
                         hidden_dim=48, hidden_layers=3, projection_hidden=128),
    # issue 18: the natural-photo LTE with a larger encoder, grown from the `natural` file
    # (model.grow_state_dict): 16 blocks of 32 channels (-deep), or 12 blocks of 48 (-wide); both widths
    # are named, so that weights.family_of never takes the paper-sized LTE (64 x 16) for one of them
    "natural-deep": dict(name="lte", use_lfe=False, use_gcm=False, use_skip=True, encoder_channels=32,
                         encoder_blocks=16),
    "natural-wide": dict(name="lte", use_lfe=False, use_gcm=False, use_skip=True, encoder_channels=48,
                         encoder_blocks=12),
    "liif": dict(name="liif", use_lfe=False, use_gcm=False, use_skip=False),
    "lte": dict(name="lte", use_lfe=False, use_gcm=False, use_skip=True),
}
