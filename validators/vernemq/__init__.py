"""VerneMQ's HTTP surface (2.1.x): a small client and strict parsers of its answers."""
