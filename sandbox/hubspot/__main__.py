"""``python -m sandbox.hubspot``: run the simulator in the foreground."""
import sys

from sandbox.hubspot.cli import main

sys.exit(main())
