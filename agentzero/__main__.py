"""``python -m agentzero`` runs the command line."""

import sys

from agentzero.console import main

sys.exit(main())
