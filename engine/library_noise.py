"""Quiet two messages libraries print on every training run that ask nothing of a writer.

- bitsandbytes, on CPUs with AVX512-BF16, tries to fetch an optional 4-bit kernel from the
  Hugging Face hub and logs a warning when the `kernels` package is absent; the built-in
  kernel is used instead.
- peft reads `model.is_gradient_checkpointing`, which transformers 5 deprecates with a
  FutureWarning on every adapter it wraps; the fix is peft's to make.

Everything else from the libraries still shows.
"""

from __future__ import annotations

import logging
import warnings


def quiet_library_noise() -> None:
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
