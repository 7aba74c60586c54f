"""Workflows: what both faces (CLI and API) call — load, compute, save."""
