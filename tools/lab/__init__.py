"""The emulated datacenter: hosts in Linux network namespaces with shaped links, where real
tracker, seedbox and client processes distribute a model, and faults are injected.

- ``netns``: namespaces, bridges, ``tc`` shaping, latency and loss (``linkdelay`` holds packets);
- ``topology``: racks, hosts and rates, and the network built from them;
- ``lab``: the services started in it and one distribution run (``pull`` is the naive baseline);
- ``measure``: what a run measured; ``faults``: kills, partitions, during a run.

``python -m tools.lab up`` builds one and keeps it up. Test bench: needs root; may import the
product, ``tools.demo`` and ``tools.sim.physics``; the product never imports it.
"""
