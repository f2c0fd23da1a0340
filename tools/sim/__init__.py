"""The fleet simulator (``python -m tools.sim.simulate``): ``simulate`` the time-stepped fluid model
that asks the tracker's own peer selection, ``kernel`` its step compiled with numba, ``physics`` the
physical limit T_min that every benchmark reports against (DESIGN.md).

Test bench: imports ``common`` and the tracker's pure peer selection; the product never imports it.
"""
