"""`python -m chaintrace` is the `chaintrace` command."""
from chaintrace.cli import main

main()
