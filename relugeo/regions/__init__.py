"""Slices, exact partitions, local complexity and tracking of activation regions."""

from .complexity import LCResult, frame, local_complexity
from .partition import Partition, partition
from .partition_kd import PartitionKD
from .region_stats import (
    decision_boundary_distance,
    density_by_distance,
    distance_to_region_boundary,
    region_shape,
    region_statistics,
)
from .slices import Slice
from .tracking import TrackResult, track

__all__ = [
    "LCResult",
    "Partition",
    "PartitionKD",
    "Slice",
    "TrackResult",
    "decision_boundary_distance",
    "density_by_distance",
    "distance_to_region_boundary",
    "frame",
    "local_complexity",
    "partition",
    "region_shape",
    "region_statistics",
    "track",
]
