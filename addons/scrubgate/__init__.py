"""scrubgate: a mitmproxy gateway that strips patient identifiers from images leaving the network."""

__version__ = "0.1.0"
