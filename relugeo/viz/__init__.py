"""matplotlib figures; they read results and compute nothing geometric."""

from .animate import animate_partitions
from .kd_plot import plot_lc_by_dim, plot_sections
from .lc_plot import plot_lc, plot_lc_layers
from .metrics_plot import plot_collapse, plot_compression, plot_inversion, plot_kernel_pca
from .migration_plot import plot_migration, plot_track_measure
from .partition_plot import plot_partition, slice_coordinates

__all__ = [
    "animate_partitions",
    "plot_collapse",
    "plot_compression",
    "plot_inversion",
    "plot_kernel_pca",
    "plot_lc",
    "plot_lc_by_dim",
    "plot_lc_layers",
    "plot_migration",
    "plot_partition",
    "plot_sections",
    "plot_track_measure",
    "slice_coordinates",
]
