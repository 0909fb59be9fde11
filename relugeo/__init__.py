"""relugeo: exact geometry of the linear regions of piecewise-affine networks."""

from . import metrics, viz
from .errors import (
    CertificateError,
    CheckpointError,
    InvalidNetworkError,
    InvalidSliceError,
    RegionLimitError,
    RelugeoError,
    UnsupportedLayerError,
)
from .nets import AffineLayer, LinearMap, PWANet, from_torch, load, save
from .regions import LCResult, Partition, PartitionKD, Slice, TrackResult, local_complexity, partition, track

__version__ = "0.1.0"

__all__ = [
    "AffineLayer",
    "CertificateError",
    "CheckpointError",
    "InvalidNetworkError",
    "InvalidSliceError",
    "LCResult",
    "LinearMap",
    "PWANet",
    "Partition",
    "PartitionKD",
    "RegionLimitError",
    "RelugeoError",
    "Slice",
    "TrackResult",
    "UnsupportedLayerError",
    "from_torch",
    "load",
    "local_complexity",
    "metrics",
    "partition",
    "save",
    "track",
    "viz",
]
