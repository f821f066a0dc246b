"""The ``tillit`` command (CLI façade), the demo, the HTTP client and the local deployment of a federation."""

from tillit.cli import main

__all__ = ["main"]
