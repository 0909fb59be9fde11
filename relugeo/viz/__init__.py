"""matplotlib figures; they read results and compute nothing geometric."""

from .lc_plot import plot_lc
from .partition_plot import plot_partition

__all__ = ["plot_lc", "plot_partition"]
