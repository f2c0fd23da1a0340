"""The host agent: fetch, verify, and atomically activate model versions."""
