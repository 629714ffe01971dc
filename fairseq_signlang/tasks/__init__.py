from . import speech2sign_u_char, speech2sign_u_word  # noqa: F401
