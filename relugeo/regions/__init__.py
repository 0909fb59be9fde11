"""Slices, exact partitions, local complexity and tracking of activation regions."""

from .adjacency import RegionGraph
from .complexity import LCResult, frame, local_complexity
from .correspondence import Correspondence, correspond
from .full_space import count_full
from .morse import critical_points
from .partition import Partition, partition
from .partition_kd import PartitionKD
from .persistence import sublevel_diagrams
from .region_complex import RegionComplex, region_complex
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
from .topology_series import slice_topology
from .tracking import TrackResult, track

__all__ = [
    "Correspondence",
    "LCResult",
    "Partition",
    "PartitionKD",
    "RegionComplex",
    "RegionGraph",
    "Slice",
    "TrackResult",
    "betti_numbers",
    "correspond",
    "count_full",
    "critical_points",
    "decision_boundary_distance",
    "density_by_distance",
    "distance_to_region_boundary",
    "frame",
    "iter_regions",
    "local_complexity",
    "partition",
    "region_complex",
    "region_shape",
    "region_statistics",
    "slice_topology",
    "sublevel_betti",
    "sublevel_diagrams",
    "sublevel_persistence",
    "track",
]
