"""``python -m wsevents.demo``: run the chat server (the same as ``wsevents serve``)."""

import sys

from wsevents.demo import main

sys.exit(main(sys.argv[1:]))
