"""The ``duban`` command: a thin layer over the library (typer + rich).

One module per group of commands (plans, checks, notify, accounts, review) registers them on the
one ``app`` (duban.cli.common); ``duban.cli.main`` imports them all and holds ``main``, the
console script."""
