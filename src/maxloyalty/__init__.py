"""MaxLoyalty: a loyalty platform for restaurant networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("maxloyalty")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
