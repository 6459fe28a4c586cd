"""``python -m bench.pipeline``: see :mod:`bench.pipeline.cli`."""

import sys

from .cli import main

sys.exit(main())
