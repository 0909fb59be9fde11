"""Slices, exact partitions, local complexity and tracking of activation regions."""

from .complexity import LCResult, frame, local_complexity
from .partition import Partition, partition
from .region_stats import (
    decision_boundary_distance,
    density_by_distance,
    distance_to_region_boundary,
    region_shape,
    region_statistics,
)
from .slices import Slice
from .streaming import iter_regions
from .tracking import TrackResult, track

__all__ = [
    "LCResult",
    "Partition",
    "Slice",
    "TrackResult",
    "decision_boundary_distance",
    "density_by_distance",
    "distance_to_region_boundary",
    "frame",
    "iter_regions",
    "local_complexity",
    "partition",
    "region_shape",
    "region_statistics",
    "track",
]
