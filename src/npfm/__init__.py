"""npfm: AI-ready corpora of nuclear- and particle-physics detector data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("npfm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
