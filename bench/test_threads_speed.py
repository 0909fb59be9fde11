"""Default thread settings against one pinned thread, on an idle machine and beside a busy neighbour.

The neighbour is a CPU-bound process pinned to CPU 0 for the duration of the
measurement: what a notebook kernel or a training job does to a shared
machine. Each case runs with relugeo's default settings (numba's thread count
as relugeo configured it, see relugeo/threads.py) and with
``numba.set_num_threads(1)``, in the same run. bench/report.py gives the
ratios: default / one thread beside the neighbour (goal <= 1.3) and one
thread / default on an idle machine (the two-thread speed-up, goal >= 1.6 on
two cores). Run it without ``NUMBA_NUM_THREADS``, since the default is what
it measures::

    python -m pytest bench/test_threads_speed.py -q --benchmark-json bench/threads.json

To compare the layer numba picked before relugeo chose one, add
``NUMBA_THREADING_LAYER=omp`` (OpenMP with its default spinning waits).
"""

import os
import subprocess
import sys
import time

import numba
import pytest
from nets import anchor_case, digits_points, mlp_module

import relugeo as rg

SUITE = "threads"
NEIGHBOUR = ["idle", "busy"]
THREADS = ["default", "1"]


@pytest.fixture(scope="module")
def cases():
    lc_net = rg.from_torch(mlp_module((64, 100, 100, 100, 10)))
    digits_net = rg.from_torch(mlp_module((64, 200, 200, 200, 10)))
    points = digits_points(300)
    part = anchor_case(64, 3)
    wide = anchor_case(128, 3)
    return {
        "partition 2-64x3-1": lambda: rg.partition(part.net, part.slice).n_regions,
        "partition 2-64x3-1, parallel=True": lambda: rg.partition(part.net, part.slice, parallel=True).n_regions,
        "partition 2-128x3-1, parallel=True": lambda: rg.partition(wide.net, wide.slice, parallel=True).n_regions,
        "exact LC 64-100x3-10, 300 points, r=1": lambda: int(rg.local_complexity(lc_net, points, 1.0).regions.sum()),
        "exact LC 64-200x3-10, 300 points, r=0.25": lambda: int(
            rg.local_complexity(digits_net, points, 0.25).regions.sum()),
    }


@pytest.fixture(params=NEIGHBOUR)
def neighbour(request):
    """Nothing, or a busy loop pinned to CPU 0 while the test runs."""
    if request.param == "idle":
        yield "idle"
        return
    code = "import os\nos.sched_setaffinity(0, {0})\nwhile True:\n    pass\n"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)
    try:
        yield "busy"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", ["partition 2-64x3-1", "partition 2-64x3-1, parallel=True",
                                  "partition 2-128x3-1, parallel=True", "exact LC 64-100x3-10, 300 points, r=1",
                                  "exact LC 64-200x3-10, 300 points, r=0.25"])
def test_threads(bench, cases, neighbour, threads, case):
    fn = cases[case]
    before = numba.get_num_threads()
    n = before if threads == "default" else 1
    numba.set_num_threads(n)
    try:
        bench.label(SUITE, f"{case} [{neighbour}]", f"threads={threads}")
        regions = bench(fn, rounds=5)
    finally:
        numba.set_num_threads(before)
    bench.counts(regions=regions)
    bench.benchmark.extra_info.update(
        neighbour=neighbour, threads_setting=threads, numba_threads_used=n,
        threading_layer=numba.threading_layer(), relugeo_threads=rg.threads.settings().as_dict(),
        env={k: os.environ.get(k) for k in ("NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY")},
    )
