"""speech2sign-U: the word-level linear and character-level convolutional generators, and the
unit discriminator of the GAN objectives."""
from . import conv_generator, linear_generator  # noqa: F401  (registration)
