"""``wsv bench load``: segmentation training throughput on an idle machine and beside other CPU-bound processes,
with the engine's thread wait policy (``engine.threads``) and with libgomp's default.

A user's machine always runs something else; what matters is that training then slows about in proportion to
the cores it lost, not several times more. Each measurement is its own process, as the wait policy is read when
torch loads: it trains on the bundled demo project (people's scribbles on six garden photos, the default model,
loss and batch) for a few warm-up steps, then counts steps for a fixed time. The competitors are plain Python
busy loops, each holding one core, started before the measurement and stopped after it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

LIBGOMP_SPINS = 300_000
"""How many times libgomp's threads spin before they sleep when nothing chooses (what torch does by default)."""


def policy_env(policy: str) -> dict[str, str]:
    """Environment of a wait policy: ``passive`` (threads sleep when a loop ends), ``spin`` (libgomp's default)
    or ``spin-N`` (spin N times, then sleep)."""
    if policy == "passive":
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    count = LIBGOMP_SPINS if policy == "spin" else policy.removeprefix("spin-")
    if not str(count).isdigit():
        raise ValueError(f"unknown wait policy {policy!r}: passive, spin or spin-N (N spins before sleeping)")
    return {"GOMP_SPINCOUNT": str(count)}

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"
WARMUP_STEPS = 3
BUSY_LOOP = "while True: pass"


def measure(project_root: Path, seconds: float, threads: int | None) -> dict:
    """Train on the project and return steps per second over ``seconds`` after the warm-up (in this process)."""
    import torch

    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    trainer = Trainer(project_root, TrainConfig(steps=10 ** 9, max_minutes=None, eval_interval_s=0, threads=threads))
    try:
        run = trainer.run()
        for _ in range(WARMUP_STEPS):
            next(run)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            next(run)
            steps += 1
        elapsed = time.perf_counter() - start
        run.close()
    finally:
        trainer.close()
    return {"steps": steps, "seconds": round(elapsed, 1), "steps_per_s": round(steps / elapsed, 3),
            "threads": torch.get_num_threads(), "wait_policy_env": {k: os.environ.get(k) for k in
                                                                     ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}}


def run_load(seconds: float, competitors: Iterable[int], policies: Iterable[str], threads: int | None,
             log: Callable[[str], None] = print, repeats: int = 1) -> list[dict]:
    """One record per (repeat, policy, number of competing processes), with the share of that policy's idle
    throughput (in the same repeat) kept and the share of the cores left to training. Repeats run the whole
    grid again, so a slow spell of the machine shows as spread instead of favouring one setting."""
    from engine.datasets.importer import import_dataset

    cores = os.cpu_count() or 1
    policies, competitors = list(policies), list(competitors)
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="wsv-bench-load-") as tmp:
        project, report = import_dataset(DEMO, Path(tmp) / "project")
        project.close()
        if report.errors:
            raise ValueError("the bundled demo could not be imported: " + "; ".join(report.errors))
        for repeat, policy in ((r, p) for r in range(repeats) for p in policies):
            idle = None
            for count in competitors:
                env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
                env.update(policy_env(policy))
                busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
                try:
                    cmd = [sys.executable, "-m", "engine.bench.load", str(Path(tmp) / "project"), str(seconds)]
                    if threads:
                        cmd.append(str(threads))
                    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
                finally:
                    for p in busy:
                        p.kill()
                        p.wait()
                if res.returncode != 0:
                    raise RuntimeError(f"the measuring process failed:\n{res.stderr.strip()[-2000:]}")
                rec = json.loads(res.stdout)
                idle = rec["steps_per_s"] if count == 0 else idle
                record = {"bench": "load", "repeat": repeat, "policy": policy, "competing_processes": count,
                          "cores": cores,
                          "threads": rec["threads"], "steps_per_s": rec["steps_per_s"], "steps": rec["steps"],
                          "seconds": rec["seconds"], "cores_left_share": round(max(cores - count, 0) / cores, 3),
                          "idle_share": round(rec["steps_per_s"] / idle, 3) if idle else None,
                          "measures": "segmentation training steps per second on the demo project (default "
                                      "settings), after warm-up; competitors are Python busy loops"}
                records.append(record)
                log(f"{policy}, {count} competing: {rec['steps_per_s']:.2f} steps/s"
                    + (f" ({record['idle_share']:.0%} of idle)" if record["idle_share"] else ""))
    return records


def _main() -> None:
    """The measuring process: ``python -m engine.bench.load PROJECT SECONDS [THREADS]`` prints one JSON record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("seconds", type=float)
    parser.add_argument("threads", type=int, nargs="?")
    args = parser.parse_args()
    print(json.dumps(measure(args.project, args.seconds, args.threads)))


if __name__ == "__main__":
    _main()
