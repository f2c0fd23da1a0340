"""The private BitTorrent tracker and control plane (FastAPI + SQLModel)."""
