"""VideoGPT's VQ-VAE: shapes and strides, size errors, the EMA codebook (straight-through
gradient, EMA moves, dead-code restarts, eval mode) and reconstruction of held-out clips."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fairseq_signlang.models.uslnet.video_vqvae import EMACodebook, VQVAE


@pytest.mark.parametrize("downsample, strides", [
    ((4, 4, 4), [(2, 2, 2), (2, 2, 2)]),
    ((2, 4, 4), [(2, 2, 2), (1, 2, 2)]),
    ((1, 2, 2), [(1, 2, 2)]),
    ((4, 1, 2), [(2, 1, 2), (2, 1, 1)]),
])
def test_shapes_and_strides(downsample, strides):
    torch.manual_seed(0)
    model = VQVAE(embedding_dim=8, n_codes=16, n_hiddens=16, n_res_layers=1, downsample=downsample)
    video = torch.rand(2, 3, 8, 16, 16) - 0.5
    latent = model.latent_shape(8, 16, 16)
    assert latent == tuple(n // d for n, d in zip((8, 16, 16), downsample))
    assert [conv.stride for conv in model.encoder.down] == strides
    assert [conv.stride for conv in model.decoder.up] == strides[::-1]  # the decoder mirrors the encoder
    assert model.encoder(video).shape == (2, 8, *latent)
    out = model(video)
    assert out["recon"].shape == video.shape and out["codes"].shape == (2, *latent) and out["codes"].dtype == torch.long
    assert out["commitment_loss"].dim() == 0 and out["perplexity"].dim() == 0 and out["restarts"].dim() == 0
    codes = model.encode(video)
    assert codes.shape == (2, *latent) and model.decode_codes(codes).shape == video.shape


def test_size_errors():
    model = VQVAE(embedding_dim=8, n_codes=16, n_hiddens=16, n_res_layers=1, downsample=(2, 4, 4))
    with pytest.raises(ValueError, match=r"height 62 is not divisible by the down-sampling factor 4 \(model.downsample\)"):
        model.latent_shape(8, 62, 64)
    with pytest.raises(ValueError, match="width 30 is not divisible by the down-sampling factor 4"):
        model(torch.zeros(1, 3, 8, 32, 30))
    with pytest.raises(ValueError, match="frames 7 is not divisible by the down-sampling factor 2"):
        model.encode(torch.zeros(1, 3, 7, 32, 32))
    with pytest.raises(ValueError, match="powers of two"):
        VQVAE(downsample=(3, 4, 4))


def nearest_distance(a, b):
    """Distance from each row of a to the nearest row of b (exact, unlike cdist's matmul path)."""
    return (a[:, None] - b[None]).norm(dim=-1).min(1).values


def ready_codebook(threshold=1.0, decay=0.99):
    """Codes 0-6 on the corners of a cube, well used; code 7 far away and nearly unused."""
    cb = EMACodebook(8, 3, decay=decay, dead_code_threshold=threshold)
    corners = torch.tensor([[x, y, z] for x in (0, 4) for y in (0, 4) for z in (0, 4)], dtype=torch.float)[:7]
    cb.embeddings.copy_(torch.cat([corners, torch.full((1, 3), 100.0)]))
    cb.cluster_size.copy_(torch.tensor([10.0] * 7 + [0.5]))
    cb.embed_sum.copy_(cb.embeddings * cb.cluster_size[:, None])
    cb.initialized.fill_(True)
    return cb, corners


def near_corners(corners, n=4, spread=0.3):
    """z (2, 3, 7*n, 1, 1): n vectors around each corner, offset by +0.5 on every axis."""
    z = corners.repeat_interleave(n, 0) + 0.5 + spread * torch.randn(len(corners) * n, 3)
    return z.T.reshape(3, 2, -1, 1, 1).transpose(0, 1).contiguous()


def test_codebook_initializes_from_encoder_vectors_and_passes_gradients_straight_through():
    torch.manual_seed(0)
    cb = EMACodebook(8, 3, decay=1.0).train()  # decay 1: the EMA step leaves the initial codes in place
    z = torch.randn(2, 3, 4, 2, 2, requires_grad=True)
    out = cb(z)
    assert bool(cb.initialized)
    flat = z.detach().movedim(1, -1).reshape(-1, 3)
    assert nearest_distance(cb.embeddings, flat).max() < 1e-5  # every code is one of the batch vectors
    assert out["embeddings"].shape == z.shape and out["codes"].shape == (2, 4, 2, 2)
    assert torch.allclose(out["embeddings"], cb.lookup(out["codes"]), atol=1e-6)
    (out["embeddings"] * torch.arange(3.0).view(1, 3, 1, 1, 1)).sum().backward()
    assert torch.allclose(z.grad, torch.arange(3.0).view(1, 3, 1, 1, 1).expand_as(z))  # the identity, straight through
    z.grad = None
    cb(z)["commitment_loss"].backward()
    assert z.grad.abs().sum() > 0


def test_ema_moves_used_codes_towards_their_vectors():
    torch.manual_seed(0)
    cb, corners = ready_codebook(threshold=0.0, decay=0.5)
    z = near_corners(corners)
    out = cb.train()(z)
    assert out["restarts"].item() == 0
    assert torch.equal(out["codes"].flatten().unique(), torch.arange(7))
    flat = z.movedim(1, -1).reshape(-1, 3)
    for k in range(7):
        mean = flat[out["codes"].flatten() == k].mean(0)
        before, after = (corners[k] - mean).norm(), (cb.embeddings[k] - mean).norm()
        assert after < 0.8 * before  # (0.5 * 10 * code + 0.5 * 4 * mean) / 7: 2/7 of the gap closes
    assert torch.allclose(cb.embeddings[7], torch.full((3,), 100.0), rtol=1e-3)  # unused and kept with threshold 0


def test_dead_code_restarts_onto_an_encoder_vector():
    torch.manual_seed(0)
    cb, corners = ready_codebook(threshold=1.0)
    z = near_corners(corners)
    out = cb.train()(z)
    assert out["restarts"].item() == 1  # code 7 (usage 0.5 * 0.99 < 1) only
    assert 7 not in out["codes"]
    flat = z.movedim(1, -1).reshape(-1, 3)
    assert nearest_distance(cb.embeddings[7:], flat).item() < 1e-6
    assert cb.cluster_size[7] == 1.0 and torch.allclose(cb.embed_sum[7], cb.embeddings[7])
    # fewer vectors than codes: restarted codes get distinct, slightly jittered copies
    cb = EMACodebook(16, 3).train()
    cb(torch.randn(1, 3, 2, 1, 1))
    assert len(cb.embeddings.unique(dim=0)) == 16


def test_eval_mode_changes_no_buffer():
    torch.manual_seed(0)
    cb, corners = ready_codebook()
    before = {k: v.clone() for k, v in cb.state_dict().items()}
    out = cb.eval()(near_corners(corners))
    assert out["restarts"].item() == 0
    assert all(torch.equal(before[k], v) for k, v in cb.state_dict().items())
    model = VQVAE(embedding_dim=8, n_codes=16, n_hiddens=16, n_res_layers=1, downsample=(2, 2, 2)).train()
    model.encode(torch.rand(1, 3, 4, 8, 8) - 0.5)  # training mode, but encode looks codes up only
    assert not bool(model.codebook.initialized)


def moving_shapes(n, seed, frames=8, size=32):
    """(n, 3, frames, size, size) clips in [-0.5, 0.5]: two coloured squares or discs each, of
    random size, moving with random velocities and bouncing off the borders of a dark frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] + 0.5
    clips = np.full((n, frames, size, size, 3), 0.1, np.float32)
    for clip in clips:
        for _ in range(2):
            r, colour, disc = rng.uniform(3, 6), rng.uniform(0.3, 1.0, 3), rng.random() < 0.5
            pos, vel = rng.uniform(r, size - r, 2), rng.uniform(-2, 2, 2)
            for frame in clip:
                dy, dx = yy - pos[0], xx - pos[1]
                frame[dy ** 2 + dx ** 2 <= r * r if disc else np.maximum(abs(dy), abs(dx)) <= r] = colour
                pos = pos + vel
                out = (pos < r) | (pos > size - r)
                vel[out], pos = -vel[out], np.clip(pos, r, size - r)
    return torch.from_numpy(clips).permute(0, 4, 1, 2, 3) - 0.5


def psnr(pred, target):
    return (10 * torch.log10(1.0 / F.mse_loss(pred, target))).item()  # pixel range 1


def test_reconstructs_held_out_clips_better_than_the_mean_frame():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, held_out = moving_shapes(256, seed=0), moving_shapes(64, seed=1)
    mean_frame = train.mean((0, 2), keepdim=True)  # (1, 3, 1, H, W), per-pixel mean of the training frames
    model = VQVAE(embedding_dim=32, n_codes=64, n_hiddens=32, n_res_layers=1, downsample=(2, 4, 4))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for step in range(150):
        video = train[torch.randint(len(train), (8,), generator=gen)]
        out = model(video)
        loss = F.mse_loss(out["recon"], video) + 0.25 * out["commitment_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(held_out)
    vq_psnr, mean_psnr = psnr(out["recon"], held_out), psnr(mean_frame.expand_as(held_out), held_out)
    # measured: VQ-VAE 18.2 dB against 13.8 dB for the mean frame; held-out perplexity 45 of 64 codes
    assert vq_psnr > mean_psnr + 3.0, (vq_psnr, mean_psnr)
    assert out["perplexity"].item() > 16
