"""Exceptions raised by relugeo; all derive from :class:`RelugeoError`."""


class RelugeoError(Exception):
    """Base class of every error relugeo raises on purpose."""


class UnsupportedLayerError(RelugeoError, TypeError):
    """A module holds a layer (or op) that relugeo cannot represent exactly."""


class InvalidNetworkError(RelugeoError, ValueError):
    """Weights are not finite, shapes do not chain, or the network is empty."""


class InvalidSliceError(RelugeoError, ValueError):
    """A slice or domain is degenerate, not convex, or of the wrong shape."""


class RegionLimitError(RelugeoError, MemoryError):
    """A partition would exceed the ``max_regions`` guard."""


class CertificateError(RelugeoError, AssertionError):
    """A region's interior point does not have the region's activation pattern."""


class CheckpointError(RelugeoError, ValueError):
    """A checkpoint is unreadable, truncated, untrusted or does not match its spec."""
