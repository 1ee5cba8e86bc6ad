"""``python -m crossflow_mini ...``: the command line (:mod:`crossflow_mini.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
