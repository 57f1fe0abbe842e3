"""`python -m sync` runs the `concord` command."""
from sync.cli import main

main()
