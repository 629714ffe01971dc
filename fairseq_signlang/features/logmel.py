"""Log-mel filterbank and MFCC features, the offline stand-in for wav2vec 2.0 when no
checkpoint is given. Computed here with torch.stft (no torchaudio): 25 ms Hann windows every
10 ms, HTK mel scale."""
import numpy as np
import torch
from scipy.fft import dct


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(num_mels: int, n_fft: int, sample_rate: int, f_min: float = 20.0, f_max: float = None) -> np.ndarray:
    """Triangular filters on the mel scale: (num_mels, n_fft // 2 + 1)."""
    f_max = f_max or sample_rate / 2
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), num_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


class LogMelExtractor:
    def __init__(self, sample_rate: int = 16000, num_mels: int = 80, num_mfcc: int = 0, cmvn: bool = False):
        """num_mfcc > 0 gives that many MFCCs (DCT-II of the log-mels) instead of the log-mels;
        cmvn normalises each dimension to zero mean and unit variance over the utterance, which
        takes out much of the speaker and channel (wav2vec 2.0 features need no such step)."""
        self.sample_rate, self.num_mfcc, self.cmvn = sample_rate, num_mfcc, cmvn
        self.win = int(0.025 * sample_rate)
        self.hop = int(0.010 * sample_rate)
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.fbank = torch.from_numpy(mel_filterbank(num_mels, self.n_fft, sample_rate))
        self.window = torch.hann_window(self.win)
        self.dim = num_mfcc or num_mels

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """(samples,) float -> (frames, dim), one frame per 10 ms."""
        x = torch.from_numpy(np.asarray(wav, dtype=np.float32))
        if len(x) < self.win:
            x = torch.nn.functional.pad(x, (0, self.win - len(x)))
        spec = torch.stft(x, self.n_fft, self.hop, self.win, self.window, center=False, return_complex=True)
        power = spec.abs().pow(2)  # (freq, frames)
        feats = torch.log(self.fbank @ power + 1e-10).t().numpy()  # (frames, mels)
        if self.num_mfcc:
            feats = dct(feats, type=2, norm="ortho", axis=1)[:, : self.num_mfcc]
        if self.cmvn:
            feats = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-5)
        return feats.astype(np.float32)
