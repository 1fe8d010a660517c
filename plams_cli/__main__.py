"""``python -m plams_cli``: the ``plams`` command."""

from plams_cli.cli.main import main

if __name__ == "__main__":  # pragma: no branch
    main()
