"""Everything that is neither a service nor a shared format, by role:

- ``tools.cli``: the ``modeltorrent`` command (publish, deploy, status, the host agent, the
  services' entry points). Product code: it may import ``common``, the services and ``tools.demo``.
- ``tools.demo``: the whole path on one machine as real processes (``modeltorrent demo``), and what
  it is built from: starting the services, a generated model, an HTTP origin standing in for
  external storage. Product code, also used by the tests, the lab and the benchmarks.
- ``tools.lab``: the emulated datacenter (network namespaces, shaped links, latency and loss,
  faults). Test bench: root only, never imported by the product.
- ``tools.sim``: the fleet simulator and the physical limit. Test bench.
- ``tools.bench``: the benchmarks, which print figures and write reports. Test bench.

``tests/test_imports.py`` keeps these lines: the product imports none of the test bench.
"""
