"""Boomerang: a self-hosted retention platform."""

__version__ = "0.1.0"
