"""The device a run uses when the user names none: GPU paths are picked at run time, never required."""
from typing import Optional, Union

import torch


def default_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """`device` when given, else the first GPU when there is one, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
