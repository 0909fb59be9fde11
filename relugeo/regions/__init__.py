"""Slices, exact partitions, local complexity and tracking of activation regions."""

from .complexity import LCResult, frame, local_complexity
from .partition import Partition, partition
from .slices import Slice

__all__ = ["LCResult", "Partition", "Slice", "frame", "local_complexity", "partition"]
