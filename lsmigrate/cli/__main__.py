"""`python -m lsmigrate.cli`."""

from . import main

main()
