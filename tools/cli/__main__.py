"""``python -m tools.cli``: the ``modeltorrent`` command without the console script."""

from tools.cli.app import main

main()
