"""`python -m lsmigrate.cli`."""

from .app import main

main()
