from . import conv_generator, linear_generator  # noqa: F401
from . import mass_transformer, uslnet, uslnet_video  # noqa: F401
