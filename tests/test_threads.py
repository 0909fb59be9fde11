"""relugeo's thread settings: CPU counts from affinity and cgroup quota, user settings left alone,
and a numba pool that really runs on the chosen layer."""

import os
import subprocess
import sys

import numba

import relugeo as rg
from relugeo import threads


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(str(tmp_path)) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(str(tmp_path)) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads._cgroup_quota(str(tmp_path)) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads._cgroup_quota(str(tmp_path)) is None


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert threads._cgroup_quota(str(tmp_path)) is None


def test_available_cpus_respects_affinity_and_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.available_cpus() == 4
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.2)
    assert threads.available_cpus() == 2
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.25)
    assert threads.available_cpus() == 1


def test_settings_match_the_running_numba():
    s = rg.threads.settings()
    assert s.cpus_available == threads.available_cpus()
    assert s.numba_threads == numba.config.NUMBA_NUM_THREADS
    if "NUMBA_NUM_THREADS" not in os.environ:
        assert s.numba_threads <= s.cpus_available
    assert s.layer in ("tbb", "omp", "workqueue")


def _settings_in_child(env: dict) -> str:
    """The layer numba really launched and the settings relugeo reported, in a fresh process."""
    code = (
        "import relugeo as rg, numba, numpy as np, torch\n"
        "net = rg.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)))\n"
        "rg.partition(net, rg.Slice.square(np.zeros(2), np.eye(2), 1.0)).verify()  # verify runs a parallel loop\n"
        "s = rg.threads.settings()\n"
        "print(numba.threading_layer(), s.layer, s.numba_threads, ','.join(s.changed))\n"
    )
    full = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_THREADING", "OMP_WAIT"))}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_default_layer_is_the_reported_one_and_never_spins():
    ran, reported, n, *changed = _settings_in_child({})
    assert ran == reported
    if ran == "omp":
        assert "OMP_WAIT_POLICY=PASSIVE" in changed
    else:
        assert ran == "tbb"


def test_explicit_user_settings_are_kept():
    ran, reported, n, *changed = _settings_in_child({"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "1"})
    assert (ran, reported, n) == ("workqueue", "workqueue", "1")
    assert changed == []
