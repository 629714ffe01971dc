"""Sampling and decoding inside training steps (back-translation, GPT samples) run the model in
eval mode (dropout off, no codebook updates) and must hand it back as they found it."""
from contextlib import contextmanager

import torch.nn as nn


@contextmanager
def eval_mode(module: nn.Module):
    """The module in eval mode for the block, then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
