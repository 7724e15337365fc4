"""Loaded by pytest for every suite below: it puts this folder on sys.path, so that each suite
imports the shared helpers (waiting.py) by name."""
