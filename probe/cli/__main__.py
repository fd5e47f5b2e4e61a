"""``python -m probe.cli`` (and ``torchrun -m probe.cli``): the ``probe`` command."""

import sys

from probe.cli import main

if __name__ == "__main__":  # imported, not run, by tools that walk the package
    sys.exit(main())
