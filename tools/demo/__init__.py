"""The whole path on one machine as real processes: ``run`` is ``modeltorrent demo``; ``procs``
starts the services as the CLI runs them, ``modelgen`` writes a model of safetensors shards,
``origin`` is an HTTP server standing in for external storage (``python -m tools.demo.origin``).

Product code (the demo is a command), also used by the tests, the lab and the benchmarks. May import
``common``, the services and ``tools.cli``; never the lab, the simulator or the benchmarks.
"""
