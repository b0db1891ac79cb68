"""Pretraining: configuration, atomic checkpoints and the training loop."""
