"""relugeo: exact geometry of the linear regions of piecewise-affine networks."""

from . import threads

threads.configure()  # before any numba kernel runs: see relugeo/threads.py

from . import data, metrics, viz  # noqa: E402
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
from .regions import (
    LCResult,
    Partition,
    PartitionKD,
    Slice,
    TrackResult,
    iter_regions,
    local_complexity,
    partition,
    track,
)

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
    "data",
    "from_torch",
    "iter_regions",
    "load",
    "local_complexity",
    "metrics",
    "partition",
    "save",
    "track",
    "viz",
]
