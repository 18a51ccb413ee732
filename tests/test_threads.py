"""How torch's threads wait and how it maps large buffers: the engine chooses passive waiting and huge pages
before torch loads unless the user chose, and ``wsv bench load`` measures training beside competing
processes."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from engine.bench.load import run_load
from engine.cli.main import main
from engine.memory import HUGE_PAGES, choose_huge_pages, keep_freed_memory
from engine.threads import WAIT_POLICY, choose_wait_policy


def test_choice_is_left_to_a_user_who_made_one():
    assert choose_wait_policy(env := {}) == WAIT_POLICY and env == {"OMP_WAIT_POLICY": WAIT_POLICY}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}):
        env = dict(chosen)
        assert choose_wait_policy(env) is None and env == chosen


def test_huge_pages_are_left_to_a_user_who_chose():
    assert choose_huge_pages(env := {}) and env == {HUGE_PAGES: "1"}
    assert not choose_huge_pages(env := {HUGE_PAGES: "0"}) and env == {HUGE_PAGES: "0"}


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
@pytest.mark.parametrize("user", [{}, {"MALLOC_TRIM_THRESHOLD_": "0"}])
def test_freed_buffers_come_back_without_page_faults(user):
    """After the engine loads, a 16 MB buffer freed and allocated again is the same memory: no page faults the
    second time (glibc alone gives it back to the kernel and faults every page in again), unless the user tuned
    the allocator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | user
    code = ("import engine, resource, numpy as np\n"
            "np.ones(2_000_000)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(5):\n"
            "    np.ones(2_000_000)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")
    faults = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                check=True).stdout)
    assert (faults < 100) == (not user)
    if user:
        assert not keep_freed_memory(dict(user))


@pytest.mark.parametrize("user", [{}, {"OMP_WAIT_POLICY": "active"}])
def test_importing_the_engine_sets_the_policy_before_torch_loads(user):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", HUGE_PAGES)} | user
    code = ("import engine, os, sys; assert 'torch' not in sys.modules; "
            f"print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('{HUGE_PAGES}'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == [user.get("OMP_WAIT_POLICY", WAIT_POLICY), "1"]


@pytest.mark.timeout(300)
def test_load_bench_trains_beside_a_busy_process():
    records = run_load(0.5, [0, 1], ["passive"], threads=1, log=lambda m: None)
    assert [(r["policy"], r["competing_processes"]) for r in records] == [("passive", 0), ("passive", 1)]
    assert all(r["steps"] >= 1 and r["steps_per_s"] > 0 and r["threads"] == 1 for r in records)
    assert records[0]["idle_share"] == 1.0 and records[1]["idle_share"] > 0
    assert records[1]["cores_left_share"] == round(max(records[1]["cores"] - 1, 0) / records[1]["cores"], 3)


def test_load_bench_rejects_unknown_policies(capsys):
    assert main(["bench", "load", "--policies", "sleepy"]) == 1
    assert "unknown wait policy" in capsys.readouterr().err
