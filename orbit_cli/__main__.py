"""``python -m orbit_cli``: same as the ``orbit`` command."""

from .app import main

if __name__ == "__main__":
    main()
