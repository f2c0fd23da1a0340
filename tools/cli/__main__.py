"""``python -m tools.cli``: the ``modeltorrent`` command without the console script."""

from tools.cli.app import main

if __name__ == "__main__":  # not when a spawned worker process imports the main module (common/hashing.py)
    main()
