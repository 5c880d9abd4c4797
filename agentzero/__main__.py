"""``python -m agentzero`` runs the command line."""

import sys

from agentzero.cli.main import main

sys.exit(main())
