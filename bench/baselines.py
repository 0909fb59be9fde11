"""The methods the exact engine is measured against.

- :func:`grid_patterns`: dense grid sampling of activation patterns on a slice
  (``relugeo.benchmark.baselines``, the one implementation ``relugeo bench`` also runs).
- :func:`naive_partition`: a straightforward per-region clipping implementation
  in NumPy (recursive, layer by layer, one cell at a time).
- :class:`VertexLC` and the functions it calls: the published vertex
  estimator of local complexity (Humayun et al. 2024), ported from the official
  code (github.com/AhmedImtiazPrio/grok-adversarial, ``local_complexity.py``,
  ``samplers.py``, ``utils.py`` and the hook set-up of ``train_mlp_mnist.py``).
- :func:`floor_cells` and :class:`MatmulFloor`: the dense-matmul floor of a
  partition, the flops of every cell's pre-activation map ``M = W A`` and a
  plain NumPy matmul of the same size.

None of these import anything from relugeo's internals: a baseline reads the
weights (``PWANet.layers``) and the slice, nothing else.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

import relugeo as rg
from relugeo.benchmark.baselines import grid_patterns, pack_bits, pattern_set  # noqa: F401 (shared)

# ---------------------------------------------------------------------------
# (b) the naive implementation: per-cell clipping in Python / NumPy
# ---------------------------------------------------------------------------


def clip_halfplane(poly: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The part of a convex polygon (m, 2) where the affine function with vertex values ``z`` is >= 0.

    One Sutherland-Hodgman step: keep the vertices with ``z >= 0`` and add the
    crossing point of every edge whose ends have strictly opposite signs.
    """
    z_next = np.roll(z, -1)
    p_next = np.roll(poly, -1, axis=0)
    crosses = ((z > 0) & (z_next < 0)) | ((z < 0) & (z_next > 0))
    t = np.where(crosses, z / np.where(crosses, z - z_next, 1.0), 0.0)
    cut = poly + t[:, None] * (p_next - poly)
    candidates = np.stack([poly, cut], axis=1)  # (m, 2, 2): vertex i, then the crossing on edge i
    keep = np.stack([z >= 0, crosses], axis=1)
    return candidates[keep]


def polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(x @ np.roll(y, -1) - np.roll(x, -1) @ y)


def naive_partition(net: rg.PWANet, sl: rg.Slice, tol: float = 1e-10):
    """Every activation region of a 2-D slice, by recursive per-cell polygon clipping.

    A cell at hidden layer ``l`` carries the affine map ``h(u) = u @ A + c`` of
    that layer's input: the slice itself for the root cell (``A = basis.T``,
    ``c = origin``), the masked forward of the layers before ``l`` otherwise. Its
    pre-activation map is ``M = A @ W.T``, ``m = c @ W.T + b``; every neuron
    whose values at the cell's vertices take both signs (beyond ``tol`` times
    its scale) clips the cell's pieces, one neuron at a time; every piece then
    recurses into layer ``l + 1`` with the masked map
    ``A' = M * slope``, ``c' = m * slope``.

    Returns
    -------
    patterns : ndarray of shape (R, words), dtype=np.uint64
    areas : ndarray of shape (R,), dtype=np.float64
    """
    if sl.dim != 2:
        raise ValueError(f"the naive implementation here is 2-D only; got a {sl.dim}-D slice")
    hidden = net.hidden
    scale = float(np.abs(sl.vertices).max())
    patterns: list[np.ndarray] = []
    areas: list[float] = []

    def visit(poly, A, c, depth, bits_so_far):
        layer = hidden[depth]
        M = A @ layer.weight.T
        m = c @ layer.weight.T + layer.bias
        eps = tol * (np.abs(M).sum(axis=0) * scale + np.abs(m))
        Z = poly @ M + m
        crossing = np.flatnonzero((Z.max(axis=0) > eps) & (Z.min(axis=0) < -eps))
        side = Z.mean(axis=0) > 0
        pieces = [(poly, side)]
        for j in crossing:
            split = []
            for piece, bits in pieces:
                zj = piece @ M[:, j] + m[j]
                zj = np.where(np.abs(zj) <= eps[j], 0.0, zj)
                if zj.max() <= 0 or zj.min() >= 0:
                    bits = bits.copy()
                    bits[j] = zj.sum() > 0
                    split.append((piece, bits))
                    continue
                on, off = bits.copy(), bits.copy()
                on[j], off[j] = True, False
                split.append((clip_halfplane(piece, zj), on))
                split.append((clip_halfplane(piece, -zj), off))
            pieces = split
        for piece, bits in pieces:
            slope = np.where(bits, 1.0, layer.negative_slope)
            pattern = bits_so_far + [bits]
            if depth + 1 == len(hidden):
                patterns.append(np.concatenate(pattern))
                areas.append(polygon_area(piece))
            else:
                visit(piece, M * slope, m * slope, depth + 1, pattern)

    visit(sl.vertices, sl.basis.T, sl.origin, 0, [])
    return pack_bits(np.array(patterns)), np.array(areas)


# ---------------------------------------------------------------------------
# (c) the published vertex estimator, ported from the official code
#
# Differences from the official code, none of which changes a count:
# - tensors stay on the CPU (the official code calls .cuda());
# - the frame is relugeo's seeded frame (rg.regions.frame), passed in, so both
#   implementations see the same vertices; the official code draws it with
#   torch.nn.utils.parametrizations.orthogonal on a CUDA Linear;
# - float64 is asked for per tensor instead of torch.set_default_dtype;
# - the hook buffer is a dict per model instead of a module global.
# ---------------------------------------------------------------------------

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated in torch 2.x

    @torch.no_grad()
    @torch.jit.script
    def get_intersection_from_activation_batched(act: torch.Tensor, batch_size: int = 1):
        """Hyperplanes of one layer crossing each hull: sign change versus the first vertex."""
        act = torch.sign(act).reshape(batch_size, act.shape[0] // batch_size, -1)
        match = act[:, 1:, ...] != act[:, :1, ...]
        match = torch.any(match, dim=1)
        n_inter = torch.sum(match, dim=-1)
        return n_inter, n_inter / match.shape[-1]


def flatten_model(model):
    """Names and modules of ``model``'s children, nested children flattened (official ``utils.py``).

    As in the official code the loop runs over the lists while they grow, so
    children appended for one container are visited (and flattened) in turn.
    """
    names, modules = map(list, zip(*model.named_children()))
    for i, (_, m) in enumerate(zip(names, modules)):
        if len(list(m.children())) > 0:
            new_names, new_modules = map(list, zip(*m.named_children()))
            modules += new_modules
            modules[i] = None
            names += [f"{names[i]}::{each}" for each in new_names]
            names[i] = None
    return [n for n in names if n is not None], [m for m in modules if m is not None]


def add_linear_hooks(model):
    """Forward hooks on every ``nn.Linear`` storing its output (the pre-activations).

    Returns the sorted layer names (as the official code sorts them) and the
    buffer the hooks write into.
    """
    names, modules = flatten_model(model)
    target_ids = np.asarray([i for i, each in enumerate(modules) if type(each) is torch.nn.Linear])
    activation: dict[str, torch.Tensor] = {}

    def get_activation(name):
        def hook(module, inputs, output):
            activation[name] = output.detach()

        return hook

    for each in target_ids:
        modules[each].register_forward_hook(get_activation(names[each]))
    layer_names = np.sort(np.asarray(names)[target_ids])
    return layer_names, activation


@torch.no_grad()
def get_ortho_hull_around_samples(x: torch.Tensor, s: torch.Tensor, r: float) -> torch.Tensor:
    """Vertices ``x + r s_p`` then ``x - r s_p`` around every sample: (N, 2P, *x.shape[1:]).

    ``s`` holds the P directions as rows, (P, D).
    """
    s = torch.stack([s for _ in range(x.shape[0])])
    s = s / s.reshape(x.shape[0], s.shape[1], -1).norm(keepdim=True, p=2, dim=-1)
    s = s * r
    s1 = x.reshape(x.shape[0], 1, -1) + s
    s2 = x.reshape(x.shape[0], 1, -1) - s
    s = torch.cat([s1, s2], dim=1)
    return s.reshape(x.shape[0], s.shape[1], *x.shape[1:])


@torch.no_grad()
def get_layer_intersections_batched(layer_names, activation_buffer, batch_size=1):
    n_inters = torch.zeros(batch_size, len(layer_names), device="cpu")
    p_inters = torch.zeros(batch_size, len(layer_names), device="cpu")
    for i, name in enumerate(layer_names):
        n_inter, p_inter = get_intersection_from_activation_batched(activation_buffer[name], batch_size=batch_size)
        n_inters[:, i] = n_inter.cpu()
        p_inters[:, i] = p_inter.cpu()
    return n_inters, p_inters


@torch.no_grad()
def get_intersections_for_hulls(hulls, model, layer_names, activation_buffer, batch_size=32):
    """Forward the hulls in batches of ``batch_size`` samples; count crossings per hooked layer.

    As in the official code the last incomplete batch is dropped, so
    ``batch_size`` should divide the number of samples.
    """
    nsamples, n_frame = hulls.shape[:2]
    if nsamples % batch_size != 0:
        warnings.warn("number of samples not divisible by `batch_size`, last batch will be dropped")
    loader = torch.utils.data.DataLoader(hulls, batch_size=batch_size, pin_memory=False, shuffle=False,
                                         drop_last=True)
    n_inters = torch.zeros(nsamples, len(layer_names), device="cpu")
    p_inters = torch.zeros_like(n_inters)
    start = 0
    for batch in loader:
        end = start + batch_size
        concat_hulls = batch.reshape(batch_size * n_frame, *hulls.shape[2:])
        model.forward(concat_hulls)
        n_inter, p_inter = get_layer_intersections_batched(layer_names, activation_buffer, batch_size=batch_size)
        n_inters[start:end] = n_inter
        p_inters[start:end] = p_inter
        start = end
    return n_inters, p_inters


@dataclass
class VertexLC:
    """A float64 copy of a module with the official hooks attached, ready to estimate LC."""

    model: torch.nn.Module
    layer_names: np.ndarray
    activation: dict

    @classmethod
    def wrap(cls, module: torch.nn.Module) -> VertexLC:
        import copy

        model = copy.deepcopy(module).double().eval()
        layer_names, activation = add_linear_hooks(model)
        return cls(model, layer_names, activation)

    def __call__(self, X: np.ndarray, radius: float, frame: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Crossings per hooked Linear layer (hidden layers, then the logits) at every point, (N, L).

        ``frame`` is (D, P) with orthonormal columns; the hull has 2P vertices.
        ``batch_size`` defaults to all points, as the official MLP script does
        (``min(approx_batch_size, N)`` with ``approx_batch_size = 10000``).
        """
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
        s = torch.from_numpy(np.ascontiguousarray(frame.T, dtype=np.float64))
        hulls = get_ortho_hull_around_samples(x, s, radius)
        n = x.shape[0] if batch_size is None else int(batch_size)
        n_inters, _ = get_intersections_for_hulls(hulls, self.model, self.layer_names, self.activation,
                                                  batch_size=n)
        return n_inters.numpy().astype(np.int64)


# ---------------------------------------------------------------------------
# (d) the dense-matmul floor
# ---------------------------------------------------------------------------


def truncated(net: rg.PWANet, n_hidden: int) -> rg.PWANet:
    """The first ``n_hidden`` hidden layers of ``net`` followed by a zero logit layer."""
    keep = list(net.hidden[:n_hidden])
    width = keep[-1].n_out
    return rg.PWANet(keep + [rg.AffineLayer(np.zeros((1, width)), np.zeros(1), None)])


@dataclass
class Floor:
    """Cells entering each layer (hidden layers, then the logits) and the flops of their maps."""

    cells: list[int]
    shapes: list[tuple[int, int]]
    k: int

    @property
    def flops(self) -> list[int]:
        """``2 * n_out * n_in * (k + 1)`` per cell, per layer."""
        return [2 * o * i * (self.k + 1) * c for (o, i), c in zip(self.shapes, self.cells)]

    @property
    def total_flops(self) -> int:
        return int(sum(self.flops))


def floor_cells(net: rg.PWANet, sl: rg.Slice) -> Floor:
    """The cells the engine visits at each layer, counted by partitioning truncations of ``net``.

    Layer 1's map is computed once on the domain, ``W1 [basis | origin]``;
    layer ``l + 1``'s map once per region of the net cut after ``l`` hidden
    layers; the logits' map once per region of the whole net.
    """
    cells = [1] + [rg.partition(truncated(net, n), sl).n_regions for n in range(1, len(net.hidden) + 1)]
    shapes = [(layer.n_out, layer.n_in) for layer in net.layers]
    return Floor(cells, shapes, sl.dim)


class MatmulFloor:
    """Plain NumPy matmuls of the same sizes as every cell's ``M = W A``.

    For each layer, ``W (n_out, n_in) @ A (n_in, (k + 1) * cells)`` with random
    ``A``, in column blocks of at most ``block`` columns (large, so BLAS runs
    at its best: the floor is a lower bound, not a model of the engine).
    """

    def __init__(self, net: rg.PWANet, floor: Floor, block: int = 1 << 15, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.jobs = []
        for layer, cells in zip(net.layers, floor.cells):
            cols = (floor.k + 1) * cells
            W = np.ascontiguousarray(layer.weight)
            A = rng.standard_normal((layer.n_in, min(cols, block)))
            out = np.empty((layer.n_out, A.shape[1]))
            full, rest = divmod(cols, A.shape[1])
            self.jobs.append((W, A, out, full, rest))

    def __call__(self) -> None:
        for W, A, out, full, rest in self.jobs:
            for _ in range(full):
                np.matmul(W, A, out=out)
            if rest:
                np.matmul(W, A[:, :rest], out=out[:, :rest])
