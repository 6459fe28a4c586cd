"""``python -m enforcer.demo``: the README's main job (see :mod:`enforcer.demo.run`).

Ctrl-C (or SIGTERM in the Avro variant) ends it in one line, status 130: the worker and
anything else the demo started are stopped on the way out."""

import sys
import warnings

from enforcer.demo.run import main

try:
    status = main()
except KeyboardInterrupt:
    # A coroutine the interrupt caught before its loop ran it is dropped on exit: not
    # worth a warning after the line that says the demo was interrupted.
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    print("the demo was interrupted; what it started is stopped", file=sys.stderr)
    status = 130
sys.exit(status)
