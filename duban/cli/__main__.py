"""``python -m duban.cli``."""

from duban.cli.main import main

main()
