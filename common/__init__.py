"""Shared formats for every modeltorrent service: manifest, piece layout, hashing, torrents.

This package is the leaf of the import graph: it imports nothing from ``tracker``, ``seedbox``,
``client`` or ``tools`` (``tests/test_imports.py`` keeps it so).
"""
