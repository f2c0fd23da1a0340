"""The seedbox: the only reader of external storage; verifies each piece and seeds first."""
