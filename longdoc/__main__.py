"""`python -m longdoc` runs the command-line tool."""

from longdoc.cli import main

# The guard matters: PDF parsing may start a child process with the "spawn" method, which
# re-imports this module.
if __name__ == "__main__":
    main()
