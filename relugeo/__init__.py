"""relugeo: exact geometry of the linear regions of piecewise-affine networks."""

from . import viz
from .errors import (
    CertificateError,
    CheckpointError,
    InvalidNetworkError,
    InvalidSliceError,
    RegionLimitError,
    RelugeoError,
    UnsupportedLayerError,
)
from .nets import AffineLayer, PWANet, from_torch, load, save
from .regions import LCResult, Partition, Slice, local_complexity, partition

__version__ = "0.1.0"

__all__ = [
    "AffineLayer",
    "CertificateError",
    "CheckpointError",
    "InvalidNetworkError",
    "InvalidSliceError",
    "LCResult",
    "PWANet",
    "Partition",
    "RegionLimitError",
    "RelugeoError",
    "Slice",
    "UnsupportedLayerError",
    "from_torch",
    "load",
    "local_complexity",
    "partition",
    "save",
    "viz",
]
