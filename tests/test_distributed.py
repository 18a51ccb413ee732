"""Training one network on two CPU processes with torchrun and DistributedDataParallel (gloo)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.datasets.importer import import_dataset
from engine.project import Project
from engine.training.data import TrainingIndex
from tests.test_dataset_io import make_dataset

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp") / "ds"
    make_dataset(root, n=8, size=(48, 32))
    return root


def test_shards_split_the_images_that_teach(dataset, tmp_path):
    project, _ = import_dataset(dataset, tmp_path / "p")
    try:
        shards = []
        for rank in range(2):
            data = TrainingIndex(project, "scribbles", shard=(rank, 2))
            data.refresh()
            shards.append(set(dict(data.keys)))
        every = TrainingIndex(project, "scribbles")
        every.refresh()
    finally:
        project.close()
    assert len(every.keys) == 4  # half the images have scribbles; every image has a box and tags
    assert shards[0] | shards[1] == set(dict(every.keys)) and not shards[0] & shards[1]
    assert len(shards[0]) == len(shards[1]) == 2


def _mean_of_alone(script: list[str], out, prefix: str) -> list[dict]:
    """Run ``script`` alone as rank 0 and as rank 1, then under torchrun; check every rank's gradient is the
    mean of the two alone, to 1e-6 of the gradients' scale (the same float32 operations, one thread each: only
    the order of the ranks' sum differs). Returns the two single-process gradient sets."""
    for command in ([sys.executable, *script, "0"], [sys.executable, *script, "1"], [*TORCHRUN, *script, "rank"]):
        res = subprocess.run(command, env=_env(), capture_output=True, text=True)
        written = sorted(p.name for p in Path(out).glob(f"{prefix}-*.pt"))
        assert res.returncode == 0, f"{command[-1]} (files written: {written}): {res.stderr[-3000:]}"
    alone = [torch.load(out / f"{prefix}-{i}.pt") for i in range(2)]
    ranks = [torch.load(out / f"{prefix}-rank{r}.pt") for r in range(2)]
    assert set(ranks[0]) == set(alone[0]) and len(alone[0]) > 10
    for name in alone[0]:
        mean = (alone[0][name] + alone[1][name]) / 2
        scale = mean.abs().max().item() + 1e-12
        for r in range(2):
            torch.testing.assert_close(ranks[r][name], mean, rtol=0, atol=1e-6 * scale)
    return alone


@pytest.mark.timeout(300)
def test_two_processes_average_their_gradients(dataset, tmp_path):
    """Rank 0 trains on batch 0, rank 1 on batch 1 (each with its own batch statistics and regularizers, as
    DistributedDataParallel runs them on the CPU): every parameter's gradient must be the mean of the gradients
    one process gets from each batch alone."""
    project, _ = import_dataset(dataset, tmp_path / "p")
    project.close()
    alone = _mean_of_alone([str(ROOT / "tests" / "distributed_steps.py"), str(tmp_path / "p"), str(tmp_path)],
                           tmp_path, "grads")
    differ = sum(not torch.allclose(alone[0][n], alone[1][n], rtol=1e-3) for n in alone[0])
    assert differ > len(alone[0]) // 2  # the two batches teach different things: the mean is not either one


@pytest.mark.timeout(300)
def test_ddpm_ranks_average_their_gradients(tmp_path):
    """The DDPM under torchrun: each rank's gradient must be the mean of the gradients one process gets from each
    rank's shard, generator and half batch alone."""
    alone = _mean_of_alone([str(ROOT / "tests" / "distributed_ddpm.py"), str(tmp_path)], tmp_path, "ddpm-grads")
    assert any(not torch.allclose(alone[0][n], alone[1][n]) for n in alone[0])


@pytest.mark.timeout(300)
def test_wsv_generate_train_ddpm_on_two_processes(tmp_path):
    wsv = Path(sys.executable).with_name("wsv")
    common = ["--builtin", "digits", "--size", "16", "--steps", "2", "--batch-size", "4",
              "--base-channels", "8", "--timesteps", "20", "--devices", "2", "--json"]
    res = subprocess.run([str(wsv), "generate", "train", "ddpm", *common, "--out", str(tmp_path / "run")], capture_output=True,
                         text=True, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)  # one rank printed
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert (tmp_path / "run" / "samples.png").is_file()
    res = subprocess.run([str(wsv), "generate", "train", "vae", *common, "--out", str(tmp_path / "vae")], capture_output=True,
                         text=True, env=_env())
    assert res.returncode != 0 and "train the vae in one process" in res.stderr


@pytest.mark.timeout(300)
def test_wsv_detect_train_on_two_processes(dataset, tmp_path):
    wsv = Path(sys.executable).with_name("wsv")
    common = ["--steps", "2", "--batch-size", "2", "--working-size", "48", "--min-size", "64", "--max-size", "64",
              "--device", "cpu", "--devices", "2", "--json"]
    res = subprocess.run([str(wsv), "detect", "train", str(dataset), "--out", str(tmp_path / "run"), *common],
                         capture_output=True, text=True, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)  # one rank printed
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert summary["train_images"] + summary["heldout_images"] == 8  # the ranks' shards add up
    assert (tmp_path / "run" / "detector.safetensors").is_file()
    res = subprocess.run([str(wsv), "detect", "train", str(dataset), "--out", str(tmp_path / "hog"), "--method",
                          "hog-svm", "--devices", "2"], capture_output=True, text=True, env=_env())
    assert res.returncode != 0 and "trains in one process" in res.stderr


@pytest.mark.timeout(300)
def test_torchrun_wsv_train_writes_one_run(dataset, tmp_path):
    wsv = Path(sys.executable).with_name("wsv")
    res = subprocess.run([*TORCHRUN, "--no-python", str(wsv), "train", str(dataset), "--split", "all", "--out",
                          str(tmp_path / "run"), "--steps", "3", "--model", "unet", "--working-size", "48",
                          "--crop-size", "32", "--batch-size", "2", "--json"], capture_output=True, text=True,
                         env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)  # one rank printed
    assert summary["world_size"] == 2 and summary["steps"] == 3 and summary["labelled_images"] == 4
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["world_size"] == 2
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 3
    assert Project.exists(tmp_path / "run" / "project")


@pytest.mark.timeout(300)
def test_devices_starts_torchrun_itself(dataset, tmp_path):
    wsv = Path(sys.executable).with_name("wsv")
    res = subprocess.run([str(wsv), "train", str(dataset), "--devices", "2", "--batch-size", "3", "--out",
                          str(tmp_path / "odd"), "--model", "unet", "--steps", "2"], capture_output=True, text=True,
                         env=_env())
    assert res.returncode != 0 and "cannot be split evenly over 2 processes" in res.stderr
    res = subprocess.run([str(wsv), "train", str(dataset), "--split", "all", "--devices", "2", "--out",
                          str(tmp_path / "run"), "--steps", "2", "--model", "unet", "--working-size", "48",
                          "--crop-size", "32", "--batch-size", "2", "--json"], capture_output=True, text=True,
                         env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["world_size"] == 2
