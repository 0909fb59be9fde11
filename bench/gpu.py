"""relugeo on a CUDA GPU: check the CUDA kernels against the CPU ones, then time both.

Run from the repository root, on a machine with a CUDA GPU:

    python bench/gpu.py --json bench/gpu.json

The run has four parts, all in one process:

1. **Checks** on fresh random inputs (a new seed every run, printed; ``--seed``
   repeats one). Every public kernel of ``relugeo.kernels.cpu`` that
   ``relugeo.kernels.cuda`` runs on the device (not the ones it hands back to
   the CPU kernel) is called on the same inputs as its CPU twin: inputs
   recorded from ``rg.partition`` (2-D and 1-D, ReLU and leaky ReLU) and
   ``rg.local_complexity`` (dim 1 and 2, hidden layers and logits) on random
   nets, plus random sign matrices and a batch of degenerate cells (lines
   through vertices, coinciding and zero neurons, slivers). Integer outputs
   must be equal, float outputs equal within 1e-9 relative. End to end,
   ``rg.partition(..., device="cuda")`` must give the CPU's regions (count,
   patterns, vertices and areas within 1e-9 relative) and
   ``rg.local_complexity(..., device="cuda")`` its region and neuron counts.
   The first mismatch ends the run with exit status 1 and its name.
2. **Timings**, CPU (numba, every core) against GPU, median of ``--repeats``
   calls after one untimed warm-up call (numba compilation): 2-D partitions of
   the anchor nets of ``bench/nets.py`` and exact local complexity (2-D and
   1-D) of the 64-200-200-200-10 digits MLP at 10,000 points. Every timed
   GPU result is checked against the CPU's as in 1.
3. **The device's own rates**, measured in the same run: dense float64
   matmul (torch.cuda when torch has CUDA, otherwise a tiled shared-memory
   numba.cuda kernel written here, labelled so) and copy bandwidth
   (host to device from pinned memory, device to device). Each GPU time is
   set against them: the FLOPs of the matmul rate and the bytes of the copy
   rate in that time, and for partitions the time the regions' own affine
   maps would take at the matmul rate (the dense-matmul floor).
4. **Tables** in Markdown, with the device, CPU, thread counts and versions;
   ``--json PATH`` writes the same numbers.

Without a GPU the script exits with status 2. ``--smoke`` runs every part at
tiny sizes (2-6-5-3 nets, a few cells, 2 LC points), so it can be exercised on
a CPU-only machine under numba's CUDA simulator:

    NUMBA_ENABLE_CUDASIM=1 python bench/gpu.py --smoke

Times under the simulator are not timings of anything.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import secrets
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numba import config, cuda, float64

from relugeo.io import write_text

HERE = Path(__file__).resolve().parent
SIMULATED = bool(config.ENABLE_CUDASIM)
NO_GPU = ("no CUDA GPU: numba.cuda.is_available() is False; run on a GPU machine, "
          "or with NUMBA_ENABLE_CUDASIM=1 --smoke to exercise the script")
RTOL = 1e-9  # float outputs: relative tolerance, against the largest magnitude of the CPU's array
DIGITS_JITTER = 0.02
TILE = 8 if SIMULATED else 16  # matmul tile edge (threads per block: TILE^2)


class Mismatch(Exception):
    """A CUDA result that differs from the CPU's."""


# ---------------------------------------------------------------------------
# Comparing results
# ---------------------------------------------------------------------------


def compare(name: str, cpu_out: Any, gpu_out: Any) -> None:
    """Raise :class:`Mismatch` naming ``name`` unless ``gpu_out`` equals ``cpu_out``.

    Tuples and lists compare item by item; integer and boolean arrays exactly;
    float arrays within ``RTOL`` of the largest magnitude of the CPU's array.
    """
    if isinstance(cpu_out, (tuple, list)):
        if not isinstance(gpu_out, (tuple, list)) or len(cpu_out) != len(gpu_out):
            raise Mismatch(f"{name}: CPU gives {len(cpu_out)} items, CUDA {gpu_out!r:.80}")
        for i, (a, b) in enumerate(zip(cpu_out, gpu_out)):
            compare(f"{name}[{i}]", a, b)
        return
    if isinstance(cpu_out, np.ndarray):
        if not isinstance(gpu_out, np.ndarray):
            raise Mismatch(f"{name}: CPU gives an array, CUDA {type(gpu_out).__name__}")
        if cpu_out.shape != gpu_out.shape or cpu_out.dtype != gpu_out.dtype:
            raise Mismatch(f"{name}: CPU {cpu_out.dtype}{cpu_out.shape}, CUDA {gpu_out.dtype}{gpu_out.shape}")
        if cpu_out.dtype.kind == "f":
            scale = float(np.nanmax(np.abs(cpu_out), initial=0.0))
            diff = np.abs(gpu_out - cpu_out)
            bad = ~((diff <= RTOL * max(scale, 1e-300)) | (np.isnan(cpu_out) & np.isnan(gpu_out)))
        else:
            bad = cpu_out != gpu_out
        if bad.any():
            idx = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
            raise Mismatch(f"{name}: {int(bad.sum())} of {bad.size} entries differ; first at {tuple(map(int, idx))}: "
                           f"CPU {cpu_out[idx].item()!r}, CUDA {gpu_out[idx].item()!r}")
        return
    if cpu_out != gpu_out:
        raise Mismatch(f"{name}: CPU {cpu_out!r}, CUDA {gpu_out!r}")


def _copy(x: Any) -> Any:
    """A deep copy of the arrays in ``x`` (tuples and lists rebuilt, other values kept)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, (tuple, list)):
        return type(x)(_copy(v) for v in x)
    return x


def _mask_counted(out: Any) -> Any:
    """Pass 1 outputs ``(bits, cuts, ncut, ...)``: rows of ``cuts`` are defined only up to ``ncut``."""
    if not (isinstance(out, tuple) and len(out) == 6):
        return out
    bits, cuts, ncut = out[:3]
    valid = np.arange(cuts.shape[1])[None, :] < ncut[:, None]
    return (bits, np.where(valid, cuts, -1).astype(cuts.dtype), *out[2:])


def compare_partitions(name: str, a: Any, b: Any) -> None:
    """CPU partition ``a`` against CUDA partition ``b``: count, patterns, vertices, areas."""
    if a.n_regions != b.n_regions:
        raise Mismatch(f"{name}: n_regions CPU {a.n_regions}, CUDA {b.n_regions}")
    compare(f"{name}: patterns", a.patterns, b.patterns)
    compare(f"{name}: ring_offsets", a.ring_offsets, b.ring_offsets)
    compare(f"{name}: vertices", a.vertices, b.vertices)
    compare(f"{name}: areas", a.areas, b.areas)


def compare_lc(name: str, a: Any, b: Any) -> None:
    """CPU local complexity ``a`` against CUDA ``b``: regions and neurons per point, boundary density."""
    compare(f"{name}: regions", a.regions, b.regions)
    compare(f"{name}: neurons", a.neurons, b.neurons)
    compare(f"{name}: boundary_density", a.boundary_density, b.boundary_density)


# ---------------------------------------------------------------------------
# Part 1: kernel checks on recorded and random inputs
# ---------------------------------------------------------------------------


def kernel_names() -> tuple[list[str], list[str]]:
    """Public kernels of both modules: (run on the device by ``cuda.py``, handed back to the CPU kernel)."""
    from relugeo.kernels import cpu
    from relugeo.kernels import cuda as gk

    names = sorted(n for n, v in vars(cpu).items()
                   if not n.startswith("_") and n in vars(gk) and callable(v)
                   and not isinstance(v, (type, types.ModuleType)) and n not in ("njit", "prange"))
    on_device = [n for n in names if getattr(gk, n) is not getattr(cpu, n)]
    return on_device, [n for n in names if n not in on_device]


class Recorder:
    """Records the arguments (before and after) and results of CPU kernel calls, up to ``limit`` per kernel."""

    def __init__(self, names: list[str], limit: int) -> None:
        from relugeo.kernels import cpu

        self.limit = limit
        self.calls: dict[str, list[tuple]] = {n: [] for n in names}
        self.module = types.ModuleType("relugeo_kernels_cpu_recorded")
        self.module.__dict__.update({k: v for k, v in vars(cpu).items() if not k.startswith("__")})
        for n in names:
            setattr(self.module, n, self._wrap(n, getattr(cpu, n)))

    def _wrap(self, name: str, fn: Callable) -> Callable:
        def recorded(*args):
            keep = len(self.calls[name]) < self.limit
            before = _copy(args) if keep else None
            out = fn(*args)
            if keep:
                self.calls[name].append((before, _copy(out), _copy(args)))
            return out

        return recorded

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route every CPU kernel call of the partition and LC code through the recorder."""
        from relugeo.kernels import backend

        engine = sys.modules["relugeo.regions.engine"]
        complexity = sys.modules["relugeo.regions.complexity"]
        part = sys.modules["relugeo.regions.partition"]

        def recording_backend(device: str = "cpu") -> types.ModuleType:
            mod = backend(device)
            return self.module if mod.__name__ == "relugeo.kernels.cpu" else mod

        saved = [(engine, "backend"), (complexity, "backend"), (engine, "cpu"), (part, "cpu")]
        old = [getattr(m, a) for m, a in saved]
        engine.backend = complexity.backend = recording_backend
        engine.cpu = part.cpu = self.module
        try:
            yield
        finally:
            for (m, a), v in zip(saved, old):
                setattr(m, a, v)


def random_net(sizes: tuple[int, ...], seed: int, slope: float = 0.0) -> Any:
    """The float64 PWANet of ``bench/nets.py``'s MLP with layer sizes ``sizes`` at ``seed``."""
    from nets import mlp_module

    import relugeo as rg

    return rg.from_torch(mlp_module(sizes, seed, slope).double())


def degenerate_cells(rng: np.random.Generator, C: int, n: int) -> tuple:
    """Arguments of ``split_cells_count`` for ``C`` copies of [-1, 1]^2 cut by ``n`` >= 8 lines, most of them degenerate.

    Random lines, coinciding neurons, a zero row, the diagonal (through two
    vertices), a line through one vertex, a sliver at an edge and a line
    parallel to it; one pass-through and one leaky neuron.
    """
    pre = rng.normal(size=(C, 3, n))
    pre[:, :, 1] = pre[:, :, 0]
    pre[:, :, 2] = 0.0
    pre[:, :, 3] = [1.0, 1.0, 0.0]
    pre[:, :, 4] = [1.0, -1.0, 2.0]
    pre[:, :, 5] = [1.0, 0.0, -1.0 + 1e-12]
    pre[:, :, 6] = [1.0, 0.0, 0.0]
    pre = np.ascontiguousarray(pre * rng.uniform(0.5, 2.0, size=(C, 1, 1)))
    slopes = np.zeros(n)
    slopes[n - 1], slopes[n - 2] = 1.0, 0.1
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    off = np.arange(C + 1, dtype=np.int64) * 4
    lab = np.full(C * 4, -1, dtype=np.int32)
    return pre, off, np.tile(square[:, 0], C), np.tile(square[:, 1], C), lab, lab.copy(), np.ones(C), 1e-10, 0, slopes


def split_degenerate(kern: types.ModuleType, args: tuple, n_next: int, rng: np.random.Generator) -> None:
    """Count and write the cells ``args`` (from :func:`degenerate_cells`) with ``kern``'s kernels."""
    pre = args[0]
    C = pre.shape[0]
    bits, cuts, ncut, npieces, nverts, masked = kern.split_cells_count(*args)
    wt = rng.normal(size=(pre.shape[2], n_next))
    base = np.ascontiguousarray(masked @ wt)
    pat = rng.integers(0, 2**16, size=(C, 2), dtype=np.uint64)
    ps = np.concatenate([[0], np.cumsum(npieces)]).astype(np.int64)
    vs = np.concatenate([[0], np.cumsum(nverts)]).astype(np.int64)
    nc, nv = int(ps[-1]), int(vs[-1])
    out = (np.zeros(nc + 1, dtype=np.int64), np.empty(nv), np.empty(nv), np.empty(nv, dtype=np.int32),
           np.empty(nv, dtype=np.int32), np.empty((nc, 2), dtype=np.uint64), np.empty((nc, 3, n_next)),
           np.empty(nc, dtype=np.int64))
    kern.split_cells_write(*args, pat, 20, bits, cuts, ncut, ps, vs, base, wt, *out)


def record_inputs(rec: Recorder, seed: int, smoke: bool) -> list[tuple[str, Callable[[str], Any], Callable]]:
    """Run the random workloads on the CPU with ``rec`` installed; return the end-to-end cases.

    Each case is ``(name, run(device) -> result, compare)``; its CPU run is
    the one recorded here.
    """
    import relugeo as rg

    rng = np.random.default_rng(seed)
    if smoke:
        nets = [("2-6-5-3 relu", random_net((2, 6, 5, 3), seed)),
                ("2-6-5-3 leaky 0.1", random_net((2, 6, 5, 3), seed + 1, 0.1))]
        lc_net, lc_name, n_points, C = random_net((2, 6, 5, 3), seed + 2), "2-6-5-3", 2, 3
    else:
        d, w = int(rng.integers(2, 9)), int(rng.integers(16, 40))
        nets = [(f"{d}-{w}x3-1 relu", random_net((d, w, w, w, 1), seed)),
                (f"2-{w}x4-4 leaky 0.1", random_net((2, w, w, w, w, 4), seed + 1, 0.1))]
        lc_net, lc_name, n_points, C = random_net((16, 24, 24, 24, 4), seed + 2), "16-24x3-4", 64, 2048
    cases: list[tuple[str, Callable[[str], Any], Callable]] = []
    with rec.installed():
        for name, net in nets:
            D = net.input_dim
            pts = rng.normal(size=(3, D))
            sl2 = rg.Slice.through(*pts, pad=0.2) if D > 2 else rg.Slice.square(pts[0], np.eye(2), 1.5)
            sl1 = rg.Slice.segment(pts[0], pts[1])
            for dim, sl in ((2, sl2), (1, sl1)):
                case = (f"partition {dim}-D, {name}",
                        lambda device, net=net, sl=sl: rg.partition(net, sl, device=device), compare_partitions)
                cpu_part = case[1]("cpu")
                cpu_part.decision_boundary  # noqa: B018 - a property; it runs decision_boundary_{1d,2d}
                cases.append((*case, cpu_part))
        X = rng.normal(size=(n_points, lc_net.input_dim))
        for dim in (2, 1):
            for layers in ("hidden", "all"):
                case = (f"local_complexity dim {dim} layers={layers}, {lc_name}, {n_points} points",
                        lambda device, dim=dim, layers=layers: rg.local_complexity(
                            lc_net, X, 0.5, dim=dim, layers=layers, device=device), compare_lc)
                cases.append((*case, case[1]("cpu")))
        split_degenerate(rec.module, degenerate_cells(rng, C, 10), 5, rng)
        z = rng.normal(size=(5 if smoke else 5000, 70 if smoke else 200))
        z[:, 3] = 0.0
        rec.module.pack_signs(z)
        rec.module.pack_signs(z, 5)
    return cases


def run_checks(seed: int, smoke: bool) -> dict:
    """Part 1: every device kernel on the recorded inputs, then the end-to-end cases; raise on a mismatch."""
    from relugeo.kernels import cuda as gk

    on_device, on_host = kernel_names()
    rec = Recorder(on_device, limit=10**9 if smoke else 40)
    t0 = time.perf_counter()
    cases = record_inputs(rec, seed, smoke)
    checked: dict[str, int] = {}
    for name in on_device:
        fn = getattr(gk, name)
        for i, (before, cpu_out, cpu_after) in enumerate(rec.calls[name]):
            args = _copy(before)
            label = f"kernel {name}, call {i + 1} of {len(rec.calls[name])}"
            try:
                gpu_out = fn(*args)
            except Exception as err:
                raise Mismatch(f"{label}: CUDA raised {type(err).__name__}: {err}") from err
            if name.endswith("_count"):
                cpu_out, gpu_out = _mask_counted(cpu_out), _mask_counted(gpu_out)
            compare(f"{label}, result", cpu_out, gpu_out)
            for j, (a, b) in enumerate(zip(cpu_after, args)):
                if isinstance(a, np.ndarray):
                    compare(f"{label}, argument {j} after the call", a, b)
        checked[name] = len(rec.calls[name])
        print(f"  ok  kernel {name}: {checked[name]} call{'s' * (checked[name] != 1)}")
    for name, run, cmp, cpu_result in cases:
        try:
            gpu_result = run("cuda")
        except Exception as err:
            raise Mismatch(f"{name}: CUDA raised {type(err).__name__}: {err}") from err
        cmp(name, cpu_result, gpu_result)
        print(f"  ok  {name}")
    unchecked = [n for n in on_device if not checked.get(n)]
    for n in unchecked:
        print(f"  NOT CHECKED  kernel {n}: runs on the device but no workload here calls it")
    return {"seed": seed, "kernels_on_device": checked, "kernels_on_cpu": on_host, "unchecked": unchecked,
            "end_to_end": [c[0] for c in cases], "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------
# Part 2: timed workloads
# ---------------------------------------------------------------------------


@dataclass
class Workload:
    """One timed call, the same on both devices.

    ``floor_flops`` gives the dense-matmul floor of a result (partitions
    only: LC never builds the maps of its final regions, so it has none).
    """

    method: str
    name: str
    size: str
    run: Callable[[str], Any]
    count: Callable[[Any], int]
    unit: str
    compare: Callable[[str, Any, Any], None]
    floor_flops: Callable[[Any], float | None]


def floor_flops(net: Any, k: int, regions: int) -> float:
    """FLOPs to push each of ``regions`` affine maps on a ``k``-D slice through every layer once.

    ``regions * (k + 1) * sum(2 * n_in * n_out)`` over the layers: the dense
    matmul work any exact method does at least once per final region.
    """
    sizes = [net.input_dim, *net.widths, net.output_dim]
    return float(regions) * (k + 1) * sum(2.0 * a * b for a, b in itertools.pairwise(sizes))


def digits_cloud(n: int) -> np.ndarray:
    """``n`` points: the 1,797 scikit-learn digits / 16 cycled, plus N(0, 0.02^2) jitter (seed 0)."""
    from nets import digits_points

    base = digits_points(1797)
    X = np.resize(base, (n, base.shape[1]))
    return np.ascontiguousarray(X + DIGITS_JITTER * np.random.default_rng(0).normal(size=X.shape))


def workloads(smoke: bool) -> list[Workload]:
    """The timed workloads: 2-D partitions of anchor nets, exact LC of the digits MLP (tiny ones with ``smoke``)."""
    from nets import DIGITS_SIZES, anchor_module, digits_module, mlp_module

    import relugeo as rg

    out: list[Workload] = []

    def part(name: str, module: Any, half: float, batch_cells: int | None = None) -> None:
        net = rg.from_torch(module)
        sl = rg.Slice.square(np.zeros(2), np.eye(2), half)
        size = f"[-{half:g}, {half:g}]^2" + ("" if batch_cells is None else f", batch_cells={batch_cells:,}")
        out.append(Workload("partition 2-D", name, size,
                            lambda device: rg.partition(net, sl, batch_cells=batch_cells, device=device),
                            lambda p: p.n_regions, "regions/s", compare_partitions,
                            lambda p: floor_flops(net, 2, p.n_regions)))

    def lc(name: str, module: Any, X: np.ndarray, r: float, dim: int) -> None:
        net = rg.from_torch(module)
        out.append(Workload(f"exact LC {dim}-D", name, f"{len(X):,} points, r={r:g}",
                            lambda device: rg.local_complexity(net, X, r, dim=dim, device=device),
                            lambda res: res.n_points, "points/s", compare_lc, lambda res: None))

    if smoke:
        part("2-6-5-3", mlp_module((2, 6, 5, 3)), 1.0)
        X = np.random.default_rng(0).uniform(-1, 1, size=(2, 2))
        lc("2-6-5-3", mlp_module((2, 6, 5, 3)), X, 0.5, 2)
        lc("2-6-5-3", mlp_module((2, 6, 5, 3)), X, 0.5, 1)
        return out
    part("anchor 2-64x3-1", anchor_module(64, 3), 1.0)
    part("anchor 2-128x3-1", anchor_module(128, 3), 1.0)
    part("anchor 2-128x3-1", anchor_module(128, 3), 4.0)
    part("anchor 2-256x3-1", anchor_module(256, 3), 1.0)
    part("anchor 2-256x3-1", anchor_module(256, 3), 4.0)
    part("anchor 2-256x3-1", anchor_module(256, 3), 4.0, batch_cells=1 << 16)
    digits = "digits MLP " + "-".join(map(str, DIGITS_SIZES))
    X = digits_cloud(10_000)
    lc(digits, digits_module(), X, 0.25, 2)
    lc(digits, digits_module(), X, 0.25, 1)
    lc(digits, digits_module(), digits_cloud(1_000), 1.0, 2)
    return out


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall seconds of ``repeats`` calls of ``fn`` after one untimed warm-up call; and the warm-up's result."""
    result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def run_workloads(repeats: int, smoke: bool) -> list[dict]:
    """Part 2: time every workload on the CPU and on the GPU; raise if their results differ."""
    rows = []
    for w in workloads(smoke):
        label = f"{w.method}, {w.name}, {w.size}"
        cpu_s, a = timed(lambda w=w: w.run("cpu"), repeats)
        gpu_s, b = timed(lambda w=w: w.run("cuda"), repeats)
        w.compare(label, a, b)
        n = w.count(a)
        extra = {"regions": int(a.n_regions)} if w.unit == "regions/s" else {
            "points": int(a.n_points), "regions_summed": int(a.regions.sum())}
        rows.append({"method": w.method, "workload": w.name, "size": w.size, "cpu_s": cpu_s, "gpu_s": gpu_s,
                     "speedup": cpu_s / gpu_s, "count": n, "unit": w.unit, "cpu_rate": n / cpu_s,
                     "gpu_rate": n / gpu_s, "floor_flops": w.floor_flops(a), **extra})
        print(f"  {label}: CPU {cpu_s:.4g} s, GPU {gpu_s:.4g} s (results equal)")
    return rows


# ---------------------------------------------------------------------------
# Part 3: the device's own rates
# ---------------------------------------------------------------------------


def _numba_matmul_kernel() -> Callable:
    """A tiled shared-memory float64 matmul ``C = A @ B`` (square, n a multiple of TILE), one thread per entry."""

    @cuda.jit
    def matmul(A, B, C):
        sa = cuda.shared.array((TILE, TILE), dtype=float64)
        sb = cuda.shared.array((TILE, TILE), dtype=float64)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        acc = 0.0
        for t in range(A.shape[1] // TILE):
            sa[ty, tx] = A[row, t * TILE + tx]
            sb[ty, tx] = B[t * TILE + ty, col]
            cuda.syncthreads()
            for k in range(TILE):
                acc += sa[ty, k] * sb[k, tx]
            cuda.syncthreads()
        C[row, col] = acc

    return matmul


def matmul_rate(n: int, repeats: int) -> dict:
    """Dense float64 ``n x n`` matmul on the device: GFLOP/s (2 n^3 per product), median of ``repeats``."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    try:
        import torch

        use_torch = bool(torch.cuda.is_available())
    except ImportError:
        use_torch = False
    if use_torch:
        dA, dB = torch.from_numpy(A).cuda(), torch.from_numpy(B).cuda()

        def once() -> Any:
            out = dA @ dB
            torch.cuda.synchronize()
            return out

        how = f"torch.matmul (torch {torch.__version__}, cuBLAS)"
        to_host = lambda out: out.cpu().numpy()
    else:
        kernel = _numba_matmul_kernel()
        dA, dB, dC = cuda.to_device(A), cuda.to_device(B), cuda.device_array((n, n))
        grid = (n // TILE, n // TILE)

        def once() -> Any:
            kernel[grid, (TILE, TILE)](dA, dB, dC)
            cuda.synchronize()
            return dC

        how = f"tiled shared-memory numba.cuda kernel in bench/gpu.py ({TILE}x{TILE} tiles; torch has no CUDA), not cuBLAS"
        to_host = lambda out: out.copy_to_host()
    seconds, out = timed(once, repeats)
    rows = min(n, 64)
    if not np.allclose(to_host(out)[:rows], A[:rows] @ B, rtol=1e-9, atol=1e-9 * n):
        raise Mismatch(f"device matmul ({how}): product differs from NumPy's")
    return {"n": n, "seconds": seconds, "gflops": 2.0 * n**3 / seconds / 1e9, "how": how}


def copy_rates(nbytes: int, repeats: int) -> dict:
    """Host (pinned) to device and device to device copy of ``nbytes`` bytes: GB/s (bytes copied / s / 1e9)."""
    n = nbytes // 8
    host = cuda.pinned_array(n, dtype=np.float64)
    host[:] = 1.0
    d1, d2 = cuda.device_array(n), cuda.device_array(n)

    def h2d() -> None:
        d1.copy_to_device(host)
        cuda.synchronize()

    def d2d() -> None:
        d2.copy_to_device(d1)
        cuda.synchronize()

    h2d_s, _ = timed(h2d, repeats)
    d2d_s, _ = timed(d2d, repeats)
    return {"bytes": n * 8, "h2d_gb_s": n * 8 / h2d_s / 1e9, "d2d_gb_s": n * 8 / d2d_s / 1e9}


# ---------------------------------------------------------------------------
# Part 4: report
# ---------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def device_name() -> dict:
    """Name, compute capability and memory of the first CUDA device (``gpu_info``), with the CUDA runtime
    and driver versions; the simulator says so."""
    if SIMULATED:
        return {"name": "numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1): no GPU"}
    from relugeo.benchmark.machine import gpu_info

    info = {"name": "CUDA device 0", **gpu_info()["devices"][0]}
    with contextlib.suppress(Exception):
        info["cuda_runtime"] = ".".join(map(str, cuda.runtime.get_version()))
        info["cuda_driver"] = ".".join(map(str, cuda.cudadrv.driver.driver.get_version()))
    return info


def report(result: dict) -> str:
    """The Markdown report: machine lines, the CPU-against-GPU table and the table against the device's rates."""
    m, g, rates = result["machine"], result["gpu"], result["device_rates"]
    v = m.get("versions", {})
    mm, cp = rates["matmul"], rates["copy"]
    lines = [f"## relugeo on the GPU ({'smoke' if result['smoke'] else 'full'} run, {result['started']})", ""]
    if result["simulated"]:
        lines += [("**Run under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): the GPU columns time Python threads "
                  "imitating CUDA, not a GPU. These results are not timings.**"), ""]
    lines += [
        f"- GPU: {g['name']}" + "".join(f", {k} {g[k]}" for k in ("compute_capability", "memory_gib", "cuda_runtime",
                                                                  "cuda_driver") if k in g),
        (f"- CPU: {m.get('cpu_model')}, {m.get('cpu_count')} logical cores; numba threads "
        f"{m.get('threads', {}).get('numba')}"),
        f"- Python {m.get('python')}; " + ", ".join(f"{k} {x}" for k, x in v.items()),
        f"- Checks (seed {result['checks']['seed']}): {len(result['checks']['kernels_on_device'])} device kernels "
        f"({', '.join(f'{k} x{c}' for k, c in result['checks']['kernels_on_device'].items())}) and "
        f"{len(result['checks']['end_to_end'])} end-to-end cases equal to the CPU's"
        + (f"; NOT CHECKED: {', '.join(result['checks']['unchecked'])}" if result["checks"]["unchecked"] else ""),
        (f"- Each time: median of {result['repeats']} call{'s' * (result['repeats'] > 1)} after one untimed warm-up call; CPU = numba kernels on "
        f"every core."),
        "",
        "| method | workload | size | CPU s | GPU s | speed-up | CPU rate | GPU rate |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["workloads"]:
        lines.append(f"| {r['method']} | {r['workload']} | {r['size']} | {r['cpu_s']:.4g} | {r['gpu_s']:.4g} | "
                     f"{r['speedup']:.3g}x | {_fmt(r['cpu_rate'])} {r['unit']} | {_fmt(r['gpu_rate'])} {r['unit']} |")
    lines += [
        "",
        (f"Device rates, same run: dense float64 matmul {_fmt(mm['gflops'])} GFLOP/s (n = {mm['n']}, {mm['how']}); "
        f"copies of {cp['bytes'] / 2**20:,.0f} MiB: host (pinned) to device {cp['h2d_gb_s']:.3g} GB/s, "
        f"device to device {cp['d2d_gb_s']:.3g} GB/s (bytes copied per second)."),
        "",
        ("GPU time against the device: *floor GFLOP* (partitions) = regions x 3 x sum over layers of 2 n_in n_out, "
        "each region's affine map on the slice pushed once through the net, as the partition returns it; "
        "*floor s* = floor GFLOP / the matmul rate above; *matmul-equivalent GFLOP* = GPU s x matmul rate; "
        "*copy-equivalent GB* = GPU s x device-to-device bandwidth."),
        "",
        ("| method | workload | size | GPU s | floor GFLOP | floor s | GPU s / floor s | matmul-equivalent GFLOP | "
        "copy-equivalent GB |"),
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["workloads"]:
        floor = "- | - | -"
        if r["floor_flops"] is not None:
            floor_s = r["floor_flops"] / (mm["gflops"] * 1e9)
            floor = f"{r['floor_flops'] / 1e9:.3g} | {floor_s:.3g} | {r['gpu_s'] / floor_s:,.3g}"
        lines.append(f"| {r['method']} | {r['workload']} | {r['size']} | {r['gpu_s']:.4g} | {floor} | "
                     f"{r['gpu_s'] * mm['gflops']:.3g} | {r['gpu_s'] * cp['d2d_gb_s']:.3g} |")
    return "\n".join(lines)


def machine() -> dict:
    """CPU, cores, threads and versions (``relugeo.benchmark.machine``)."""
    from relugeo.benchmark.machine import machine_info

    info = machine_info()
    info.pop("gpu", None)  # replaced by device_name(), which also knows the simulator
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON to PATH")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, to exercise the script (e.g. under the simulator)")
    ap.add_argument("--seed", type=int, help="seed of the check inputs (default: a fresh one, printed)")
    ap.add_argument("--repeats", type=int, help="timed calls per workload and device (default 5; 1 with --smoke)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the four parts; 0 when every check passed, 1 on a mismatch, 2 without a GPU."""
    args = parse_args(argv)
    if not SIMULATED and not cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    if SIMULATED and not args.smoke:
        print("NUMBA_ENABLE_CUDASIM=1 runs CUDA kernels as Python threads: only --smoke sizes finish; "
              "add --smoke, or run on a GPU machine without the simulator", file=sys.stderr)
        return 2
    if SIMULATED:
        # simulated threads poll each other at barriers; a short GIL switch interval keeps them moving
        sys.setswitchinterval(1e-4)
    sys.path.insert(0, str(HERE))  # bench/nets.py
    seed = secrets.randbits(31) if args.seed is None else int(args.seed)
    repeats = args.repeats or (1 if args.smoke else 5)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    t0 = time.perf_counter()
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "started": started,
                    "smoke": args.smoke, "simulated": SIMULATED, "repeats": repeats,
                    "gpu": device_name(), "machine": machine()}
    if SIMULATED:
        print("NUMBA_ENABLE_CUDASIM=1: the CUDA kernels run in numba's simulator; results under the simulator "
              "are not timings.")
    print(f"GPU: {result['gpu']['name']}")
    print(f"check seed: {seed} (repeat with --seed {seed})")
    try:
        print("1. CUDA against CPU")
        result["checks"] = run_checks(seed, args.smoke)
        print("2. timings, CPU against GPU")
        result["workloads"] = run_workloads(repeats, args.smoke)
        print("3. device rates")
        n_mm = 32 if SIMULATED else (256 if args.smoke else 4096)
        result["device_rates"] = {"matmul": matmul_rate(n_mm, repeats),
                                  "copy": copy_rates(1 << (20 if args.smoke else 28), repeats)}
    except Mismatch as err:
        print(f"MISMATCH (seed {seed}): {err}", file=sys.stderr)
        if args.json:
            result["mismatch"] = str(err)
            write_text(json.dumps(result, indent=1, default=str) + "\n", args.json)
        return 1
    result["seconds"] = time.perf_counter() - t0
    print()
    print(report(result))
    print(f"\nwhole run {result['seconds']:.1f} s")
    if args.json:
        write_text(json.dumps(result, indent=1, default=str) + "\n", args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
