"""The ``plams`` command line: the master script and its subcommand groups."""
