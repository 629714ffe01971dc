from . import speech2sign_u_char, speech2sign_u_word, uslnet  # noqa: F401  (registration)
