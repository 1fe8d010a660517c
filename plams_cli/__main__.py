"""``python -m plams_cli``: the ``plams`` command."""

from plams_cli.cli.main import program

if __name__ == "__main__":  # pragma: no branch
    program()
