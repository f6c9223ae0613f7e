"""``python -m wsevents``: the command-line interface (see ``wsevents --help``)."""

import sys

from wsevents.cli import main

sys.exit(main())
