"""Downstream tasks: tracking, particle-ID and noise metrics."""
