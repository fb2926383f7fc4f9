"""Only the two known library messages are quieted; other warnings still reach the writer."""

from __future__ import annotations

import logging
import warnings

from engine.library_noise import quiet_library_noise


def test_the_known_messages_are_quiet_and_others_are_not():
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    level = logger.level
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_library_noise()
            warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
            warnings.warn("`other_thing` is deprecated", FutureWarning)
        assert [str(warning.message) for warning in caught] == ["`other_thing` is deprecated"]
        assert not logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)
    finally:
        logger.setLevel(level)
