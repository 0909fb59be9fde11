import os
import subprocess
import sys
import time
from pathlib import Path

# tests/oracle.py and tests/common.py are imported by name, whatever pytest's import mode
sys.path.insert(0, str(Path(__file__).parent))

# the kernel families compiled side by side, one process each, before any test runs
_COMPILE_GROUPS = (("planar",), ("k-D", "certified"))


def pytest_configure(config):
    """Compile numba's kernels once, before the test processes start, when the cache is cold.

    Left to the tests, every pytest-xdist worker compiles the same kernels at once while it runs
    tests, and a first run on 2 cores takes several times longer than a warm one. Here the
    controller compiles the families in two processes side by side (about a minute and a half),
    and every worker then loads them from numba's cache.
    """
    if hasattr(config, "workerinput") or os.environ.get("NUMBA_ENABLE_CUDASIM"):
        return
    from relugeo.regions import warmup

    groups = [g for g in _COMPILE_GROUPS if not all(warmup.cache_is_warm(f) for f in g)]
    if not groups:
        return
    t0 = time.perf_counter()
    print(f"relugeo: compiling the kernels of {', '.join(f for g in groups for f in g)} before the tests",
          file=sys.stderr, flush=True)
    code = "import sys; from relugeo.regions import warmup; warmup.compile_kernels(families=tuple(sys.argv[1:]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, *g]) for g in groups]
    failed = [g for g, p in zip(groups, procs) if p.wait() != 0]
    if failed:  # the tests that need these kernels compile them and report the error themselves
        print(f"relugeo: compiling {failed} failed", file=sys.stderr, flush=True)
    print(f"relugeo: kernels compiled in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
