"""Tests of the discovery portal."""
