"""VideoGPT's VQ-VAE (USLNet section 2.2, eqs. 2-4): a 3D-convolutional autoencoder with axial
attention whose latent grid is quantized against a codebook kept by exponential moving averages.

Videos are (B, 3, T, H, W) floats in [-0.5, 0.5]. With the default downsample (4, 4, 4) a
(B, 3, 16, 64, 64) window becomes a (B, D, 4, 16, 16) latent grid, i.e. 1024 codes. The caller
trains with mse(recon, video) + 0.25 * commitment_loss; the codebook learns by EMA, not by
gradients, and restarts codes that fall out of use so that the whole codebook stays in play.
"""
import math
from typing import Dict, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class AxialAttention3d(nn.Module):
    """Multi-head self-attention along T, H and W separately, summed. Attending along one axis
    at a time costs THW (T + H + W) instead of (THW)^2 for full attention over the grid."""

    def __init__(self, channels: int, n_heads: int):
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} are not divisible by the number of heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.ModuleList(nn.Linear(channels, 3 * channels) for _ in range(3))
        self.out = nn.ModuleList(nn.Linear(channels, channels) for _ in range(3))

    def _attend(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        x = x.movedim(axis + 1, -2)  # (B, *, N, C): the attended axis next to the channels
        shape, (N, C) = x.shape, x.shape[-2:]
        q, k, v = self.qkv[axis](x).reshape(-1, N, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x (M, nh, N, dh)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(shape)  # (B, *, N, C)
        return self.out[axis](y).movedim(-2, axis + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)  # (B, C, T, H, W) -> (B, T, H, W, C)
        return sum(self._attend(x, axis) for axis in range(3)).movedim(-1, 1)


class AttentionResidualBlock(nn.Module):
    """Pre-norm residual block as in VideoGPT: BN-ReLU-conv3 (halving channels), BN-ReLU-conv1,
    BN-ReLU-axial attention, added to the input."""

    def __init__(self, n_hiddens: int, n_heads: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.BatchNorm3d(n_hiddens), nn.ReLU(), nn.Conv3d(n_hiddens, n_hiddens // 2, 3, padding=1, bias=False),
            nn.BatchNorm3d(n_hiddens // 2), nn.ReLU(), nn.Conv3d(n_hiddens // 2, n_hiddens, 1, bias=False),
            nn.BatchNorm3d(n_hiddens), nn.ReLU(), AxialAttention3d(n_hiddens, n_heads),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _residual_stack(n_hiddens: int, n_res_layers: int, n_heads: int) -> nn.Sequential:
    return nn.Sequential(*[AttentionResidualBlock(n_hiddens, n_heads) for _ in range(n_res_layers)], nn.BatchNorm3d(n_hiddens), nn.ReLU())


def _kernel_stride(halvings: Sequence[int], step: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Kernel and stride of the step-th halving conv: an axis with halvings left is halved
    (kernel 4, stride 2), the others keep their size (kernel 3, stride 1); padding 1 either way."""
    stride = tuple(2 if n > step else 1 for n in halvings)
    return tuple(4 if s == 2 else 3 for s in stride), stride


class Encoder(nn.Module):
    """(B, 3, T, H, W) -> (B, D, T/dt, H/dh, W/dw). Each axis is halved by the first log2(d)
    strided convs, e.g. downsample (2, 4, 4): (B,3,8,32,32) -> stride (2,2,2) -> (B,C,4,16,16)
    -> stride (1,2,2) -> (B,C,4,8,8)."""

    def __init__(self, n_hiddens: int, n_res_layers: int, downsample: Sequence[int], n_heads: int, embedding_dim: int):
        super().__init__()
        halvings = [int(math.log2(d)) for d in downsample]
        self.down = nn.ModuleList()
        for step in range(max(halvings)):
            kernel, stride = _kernel_stride(halvings, step)
            self.down.append(nn.Conv3d(3 if step == 0 else n_hiddens, n_hiddens, kernel, stride, padding=1))
        self.conv = nn.Conv3d(n_hiddens if self.down else 3, n_hiddens, 3, padding=1)
        self.res = _residual_stack(n_hiddens, n_res_layers, n_heads)
        self.to_embedding = nn.Conv3d(n_hiddens, embedding_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.down:
            x = F.relu(conv(x))  # (B, C, T, H, W) -> (B, n_hiddens, T/sT, H/sH, W/sW)
        return self.to_embedding(self.res(self.conv(x)))  # (B, D, t, h, w)


class Decoder(nn.Module):
    """Mirror of the Encoder: (B, D, t, h, w) -> (B, 3, t*dt, h*dh, w*dw), transposed convs
    doubling the axes in the reverse order of the encoder's halvings."""

    def __init__(self, n_hiddens: int, n_res_layers: int, downsample: Sequence[int], n_heads: int, embedding_dim: int):
        super().__init__()
        halvings = [int(math.log2(d)) for d in downsample]
        self.from_embedding = nn.Conv3d(embedding_dim, n_hiddens, 1)
        self.res = _residual_stack(n_hiddens, n_res_layers, n_heads)
        self.up = nn.ModuleList()
        for step in reversed(range(max(max(halvings), 1))):  # no halvings: one size-keeping conv to RGB
            kernel, stride = _kernel_stride(halvings, step)
            self.up.append(nn.ConvTranspose3d(n_hiddens, 3 if step == 0 else n_hiddens, kernel, stride, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res(self.from_embedding(x))  # (B, n_hiddens, t, h, w)
        for i, conv in enumerate(self.up):
            x = conv(x)  # (B, C, t, h, w) -> (B, C', t*sT, h*sH, w*sW)
            if i < len(self.up) - 1:
                x = F.relu(x)
        return x


class EMACodebook(nn.Module):
    """Nearest-neighbour quantization (eq. 2-3) against K codes that follow the mean of the
    encoder vectors assigned to them (exponential moving averages, as VideoGPT), with dead-code
    restarts: a code whose EMA usage drops below dead_code_threshold is moved onto a random
    encoder vector of the current batch. Under torch.distributed the batch statistics are summed
    over replicas and random vectors come from rank 0, so every replica keeps the same codebook."""

    def __init__(self, n_codes: int, embedding_dim: int, decay: float = 0.99, eps: float = 1e-5, dead_code_threshold: float = 1.0):
        super().__init__()
        self.n_codes, self.embedding_dim = n_codes, embedding_dim
        self.decay, self.eps, self.dead_code_threshold = decay, eps, dead_code_threshold
        self.register_buffer("embeddings", torch.randn(n_codes, embedding_dim))  # (K, D)
        self.register_buffer("cluster_size", torch.ones(n_codes))  # (K,) EMA of the number of vectors per code
        self.register_buffer("embed_sum", self.embeddings.clone())  # (K, D) EMA of their sum
        self.register_buffer("initialized", torch.tensor(False))

    def _flatten(self, z: torch.Tensor) -> torch.Tensor:
        return z.detach().movedim(1, -1).reshape(-1, self.embedding_dim).to(self.embeddings.dtype)  # (B, D, t, h, w) -> (N, D)

    @torch.no_grad()
    def _assign(self, flat: torch.Tensor) -> torch.Tensor:
        e = self.embeddings
        with torch.autocast(flat.device.type, enabled=False):  # distances at the codebook's precision
            dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)  # (N, K)
        return dist2.argmin(1)  # (N,)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, t, h, w) of the nearest codes to z (B, D, t, h, w); updates nothing."""
        return self._assign(self._flatten(z)).view(z.shape[0], *z.shape[2:])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embeddings).movedim(-1, 1)  # (B, t, h, w) -> (B, D, t, h, w)

    def _random_vectors(self, flat: torch.Tensor, n: int) -> torch.Tensor:
        """n distinct rows of flat (N, D), the same on every replica; when N < n the rows are
        repeated with a little noise so that no two codes coincide."""
        if len(flat) < n:
            flat = flat.repeat(math.ceil(n / len(flat)), 1)
            flat = flat + torch.randn_like(flat) * 0.01 / math.sqrt(self.embedding_dim)
        vectors = flat[torch.randperm(len(flat), device=flat.device)[:n]].contiguous()  # (n, D)
        if _distributed():
            dist.broadcast(vectors, 0)
        return vectors

    @torch.no_grad()
    def _initialize(self, flat: torch.Tensor) -> None:
        vectors = self._random_vectors(flat, self.n_codes)
        self.embeddings.copy_(vectors)
        self.embed_sum.copy_(vectors)
        self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> int:
        """EMA step towards the batch means, then dead-code restarts; returns the restart count."""
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat)  # (K, D)
        if _distributed():
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        size = (self.cluster_size + self.eps) / (n + self.n_codes * self.eps) * n  # Laplace smoothing: never 0
        self.embeddings.copy_(self.embed_sum / size[:, None])
        dead = self.cluster_size < self.dead_code_threshold  # (K,), identical on all replicas
        n_dead = int(dead.sum())
        if n_dead:
            vectors = self._random_vectors(flat, n_dead)
            self.embeddings[dead] = vectors
            self.embed_sum[dead] = vectors  # as if the code had just been given this one vector
            self.cluster_size[dead] = 1.0
        return n_dead

    def forward(self, z: torch.Tensor) -> Dict[str, torch.Tensor]:
        B, D, *grid = z.shape
        flat = self._flatten(z)  # (N, D), N = B t h w
        if self.training and not bool(self.initialized):
            self._initialize(flat)
        codes = self._assign(flat)  # (N,)
        quantized = F.embedding(codes, self.embeddings).view(B, *grid, D).movedim(-1, 1).to(z.dtype)  # (B, D, t, h, w)
        counts = torch.bincount(codes, minlength=self.n_codes).to(flat.dtype)  # (K,)
        restarts = 0
        if self.training:
            if _distributed():
                dist.all_reduce(counts)
            restarts = self._update(flat, codes, counts)
        probs = counts / counts.sum()
        return dict(
            embeddings=z + (quantized - z).detach(),  # straight-through: the decoder's gradient goes to z
            codes=codes.view(B, *grid),
            commitment_loss=F.mse_loss(z, quantized.detach()),
            perplexity=torch.exp(-(probs * torch.log(probs + 1e-10)).sum()),
            restarts=torch.tensor(restarts, device=z.device),
        )


class VQVAE(nn.Module):
    """Encoder -> EMA codebook -> decoder. encode/decode_codes give the discrete code grids the
    GPT prior models; forward returns what the training loss needs."""

    def __init__(self, embedding_dim: int = 256, n_codes: int = 2048, n_hiddens: int = 240, n_res_layers: int = 4,
                 downsample: Sequence[int] = (4, 4, 4), attn_heads: int = 2, ema_decay: float = 0.99, dead_code_threshold: float = 1.0):
        super().__init__()
        downsample = tuple(int(d) for d in downsample)
        if len(downsample) != 3 or any(d < 1 or d & (d - 1) for d in downsample):
            raise ValueError(f"downsample must be three powers of two (time, height, width), got {downsample}")
        self.embedding_dim, self.n_codes, self.downsample = embedding_dim, n_codes, downsample
        self.encoder = Encoder(n_hiddens, n_res_layers, downsample, attn_heads, embedding_dim)
        self.codebook = EMACodebook(n_codes, embedding_dim, ema_decay, dead_code_threshold=dead_code_threshold)
        self.decoder = Decoder(n_hiddens, n_res_layers, downsample, attn_heads, embedding_dim)

    def latent_shape(self, frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """(t, h, w) of the code grid for videos of this size."""
        sizes = dict(frames=frames, height=height, width=width)
        for (name, n), d in zip(sizes.items(), self.downsample):
            if n % d:
                raise ValueError(f"{name} {n} is not divisible by the down-sampling factor {d} (model.downsample)")
        return tuple(n // d for n, d in zip(sizes.values(), self.downsample))

    def _check(self, video: torch.Tensor) -> None:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got {tuple(video.shape)}")
        self.latent_shape(*video.shape[2:])

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        self._check(video)
        return self.codebook.nearest(self.encoder(video))  # (B, t, h, w)

    def decode_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.decoder(embeddings)  # (B, D, t, h, w) -> (B, 3, T, H, W)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decode_embeddings(self.codebook.lookup(codes))

    def forward(self, video: torch.Tensor) -> Dict[str, torch.Tensor]:
        self._check(video)
        vq = self.codebook(self.encoder(video))
        return dict(recon=self.decode_embeddings(vq["embeddings"]), codes=vq["codes"], commitment_loss=vq["commitment_loss"],
                    perplexity=vq["perplexity"], restarts=vq["restarts"])
