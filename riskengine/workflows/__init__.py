"""Workflows: what the command line and the API both call (load from the lake and store, compute, save)."""
