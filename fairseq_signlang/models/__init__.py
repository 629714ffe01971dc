from . import linear_generator  # noqa: F401
