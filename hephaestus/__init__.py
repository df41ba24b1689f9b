"""Hephaestus: an observable autonomous agent that improves a git repository in cycles."""

__version__ = "0.1.0"
