"""The clip geometry of a USLNet video model: the frame rate, square resolution and window
length its VQ-VAE was trained on."""


def check_downsampling(resolution: int, window_frames: int, downsample: tuple) -> None:
    """Fail before training when the VQ-VAE's (time, height, width) down-sampling does not divide
    the window: the encoder would silently drop frames or pixels and the decoder could not
    reconstruct the input's shape."""
    if len(downsample) != 3 or any(int(d) != d or d < 1 for d in downsample):
        raise ValueError(f"model.downsample must be three positive integers (time, height, width), got {list(downsample)}")
    t, h, w = (int(d) for d in downsample)
    problems = []
    if window_frames % t:
        problems.append(f"task.window_frames {window_frames} is not divisible by the VQ-VAE's temporal down-sampling {t} (model.downsample)")
    for d in dict.fromkeys((h, w)):
        if resolution % d:
            problems.append(f"task.resolution {resolution} is not divisible by the VQ-VAE's spatial down-sampling {d} (model.downsample)")
    if problems:
        raise ValueError("; ".join(problems))
