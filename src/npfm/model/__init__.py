"""Tokenisation, serialisation and models of npfm."""
