"""Slices, exact partitions, local complexity and tracking of activation regions."""

from .adjacency import RegionGraph
from .complexity import LCResult, frame, local_complexity
from .correspondence import Correspondence, correspond
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
from .streaming import iter_regions
from .topology import betti_numbers, sublevel_betti, sublevel_persistence
from .tracking import TrackResult, track

__all__ = [
    "Correspondence",
    "LCResult",
    "Partition",
    "PartitionKD",
    "RegionGraph",
    "Slice",
    "TrackResult",
    "betti_numbers",
    "correspond",
    "decision_boundary_distance",
    "density_by_distance",
    "distance_to_region_boundary",
    "frame",
    "iter_regions",
    "local_complexity",
    "partition",
    "region_shape",
    "region_statistics",
    "sublevel_betti",
    "sublevel_persistence",
    "track",
]
