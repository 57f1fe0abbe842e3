"""``python -m sandbox.odoo --port P --seed N``."""
import sys

from . import main

raise SystemExit(main(sys.argv[1:]))
