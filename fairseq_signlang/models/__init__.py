from . import conv_generator, linear_generator  # noqa: F401
