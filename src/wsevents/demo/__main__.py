"""``python -m wsevents.demo``: run the demo chat server."""

from wsevents.demo import main

main()
