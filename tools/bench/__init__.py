"""Benchmarks: commands that print figures and ratios measured side by side in one run, and write
reports under ``results/`` (the latest ones are copied to ``docs/``).

- ``python -m tools.bench.dataplane``: what each stage costs a host per byte at full speed (``cpu``
  reads processes' and threads' CPU from /proc; ``vanilla`` is the stock libtorrent yardstick);
- ``python -m tools.bench.distribute``: the emulated datacenter against the physical limit, with
  the simulator's validation (``charts`` draws its PNGs);
- ``python -m tools.bench.announce``: the tracker's announce throughput beside opentracker;
- ``python -m tools.bench.activation``: last piece to active model, by model size.

Test bench: may import everything; the product never imports it.
"""
