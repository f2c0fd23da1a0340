"""Command-line tools: the ``modeltorrent`` CLI, the demo, the demo's origin server."""
