"""``python -m wsevents.demo``: run the chat server (the same as ``wsevents serve``).

The launcher lives here, above the demo package: the CLI imports the demo's servers, and the
demo itself never imports the CLI (no import cycle).
"""

import sys

from wsevents.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
