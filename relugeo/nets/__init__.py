"""PyTorch ingestion: modules and checkpoints to :class:`PWANet`, and safe checkpoint I/O."""

from .checkpoint import load, load_module, save
from .linear_maps import LinearMap, torch_map
from .pwanet import AffineLayer, PWANet
from .spec import arch_of, arch_to_string, build_module, parse_arch
from .torch_import import from_torch

__all__ = [
    "AffineLayer",
    "LinearMap",
    "PWANet",
    "from_torch",
    "load",
    "load_module",
    "save",
    "parse_arch",
    "build_module",
    "arch_to_string",
    "arch_of",
    "torch_map",
]
