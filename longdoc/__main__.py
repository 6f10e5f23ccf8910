"""`python -m longdoc` runs the command-line tool."""

from longdoc.cli import main

main()
