"""``python -m enforcer.cli``: the same as the ``enforcer`` command."""

import sys

from enforcer.cli import main

sys.exit(main())
