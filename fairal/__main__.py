"""``python -m fairal``: the command line."""

from fairal.cli import main

raise SystemExit(main())
