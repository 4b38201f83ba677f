"""``python -m duban.cli``."""

from duban.cli import main

main()
