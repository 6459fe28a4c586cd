"""``python -m enforcer.demo``: the README's main job (see :mod:`enforcer.demo.run`)."""

import sys

from enforcer.demo.run import main

sys.exit(main())
