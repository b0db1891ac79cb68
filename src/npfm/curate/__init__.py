"""Curation: recipes, quality checks, quarantine, deterministic splits, publication."""
