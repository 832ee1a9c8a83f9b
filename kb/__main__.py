"""`python -m kb` runs the command line (the tests use it to run kb as a user does)."""

from kb.cli import main

main()
