"""Catalog of corpora, geometries, checkpoints, benchmark results and their provenance."""
