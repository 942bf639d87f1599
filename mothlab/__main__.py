"""``python -m mothlab`` runs the ``mothlab`` command (the same entry point as the console script).

Tests and the app call the CLI this way, so it works in any environment where the package
imports, whether or not a ``mothlab`` script is on PATH."""

import sys

from mothlab.cli import main

sys.exit(main())
