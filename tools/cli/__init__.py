"""The ``modeltorrent`` command: ``app`` holds the command tree and its options, and each larger
command's work lives in a module of its own (``publish``, ``fetch``, ``deploy``, ``agent``).

May import ``common``, the services (tracker, seedbox, client: each through its public entry points,
the tracker through ``tracker.api_client`` except for ``tracker serve``) and ``tools.demo``; never the
lab, the simulator or the benchmarks.
"""
