"""``python -m builder`` runs the kitbuild CLI."""

from builder.cli import entrypoint

entrypoint()
