"""`python -m engine.cli` is the same as `voicebench`."""

import sys

from engine.cli import main

sys.exit(main())
