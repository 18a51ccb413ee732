"""``wsv bench generative`` end to end at toy sizes: the records' shape and sanity (the real figures are in
docs/benchmarks.md)."""
import json
import math
import os
import subprocess
import sys

from engine.cli.main import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bench_generative_records(tmp_path):
    # A child process with one thread for torch and for numpy's BLAS: FID's eigendecompositions of 1280 x 1280
    # covariances slow down many times over when BLAS threads compete with other work for a few cores.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "engine.cli.main", "bench", "generative", "--size", "16", "--steps",
                          "4", "--batch-size", "8", "--base-channels", "8", "--timesteps", "50", "--ddim-steps", "2",
                          "--samples", "16", "--ddpm-samples", "8", "--device", "cpu", "--threads", "1",
                          "--work", str(tmp_path / "work"), "--json"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    training = [r for r in records if r["measure"] == "training"]
    assert [r["model"] for r in training] == ["vae", "gan", "ddpm"]
    assert all(r["steps"] == 4 and r["steps_per_s"] > 0 and r["device"] == "cpu" for r in training)
    assert {"final_recon", "final_kl"} <= set(training[0]) and "final_g_loss" in training[1] and "final_loss" in training[2]
    assert (tmp_path / "work" / "cpu" / "ddpm" / "generative.safetensors").is_file()

    sampling = [r for r in records if r["measure"] == "sampling"]
    assert [(r["model"], r["sampler"], r["samples"]) for r in sampling] == [
        ("vae", "decoder", 16), ("gan", "generator", 16), ("ddpm", "ddpm-50", 8), ("ddpm", "ddim-2 (eta 0)", 8),
        ("ddpm", "ddim-2 (eta 0)", 16)]
    ddpm, ddim = sampling[2], sampling[3]
    assert (ddpm["network_evaluations"], ddim["network_evaluations"]) == (50, 2)
    # the same model on the same 8 noise images, 25 times fewer network passes: a relative comparison only
    assert ddim["seconds"] < ddpm["seconds"] and ddim["speedup_vs_ddpm"] > 1
    for r in sampling:
        assert math.isfinite(r["kid"]) and r["kid_std"] >= 0 and math.isfinite(r["fid"])
        assert "EfficientNet-Lite0" in r["features"] and r["reference_images"] == r["samples"]
        assert r["memorization_ratio"] > 0 and r["train_steps"] == 4

    reference = [r for r in records if r["measure"] == "reference"]
    assert [r["samples"] for r in reference] == [8, 16] and all(math.isfinite(r["kid"]) for r in reference)


def test_bench_generative_errors(capsys, tmp_path):
    code, _, err = run(capsys, "bench", "generative", "--models", "vae,flow", "--work", tmp_path)
    assert code == 1 and "flow" in err
    code, _, err = run(capsys, "bench", "generative", "--timesteps", "20", "--ddim-steps", "50", "--work", tmp_path)
    assert code == 1 and "--ddim-steps" in err


def test_bench_generative_conditional_and_latent_rows(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "engine.cli.main", "bench", "generative", "--models",
                          "cgan,cddpm,latent-ddpm", "--size", "16", "--steps", "6", "--batch-size", "8",
                          "--base-channels", "8", "--timesteps", "20", "--ddim-steps", "2", "--samples", "20",
                          "--ddpm-samples", "8", "--guidance-scales", "0,3", "--classifier-scale", "2",
                          "--device", "cpu", "--threads", "1", "--work", str(tmp_path / "work"), "--json"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    training = [(r["model"], r["steps"]) for r in records if r["measure"] == "training"]
    # latent diffusion: a third of the steps for its VAE, the rest for the DDPM over its codes
    assert training == [("cgan", 6), ("cddpm", 6), ("latent-ddpm (its VAE)", 2), ("latent-ddpm", 4)]
    by_class = [r for r in records if "class_accuracy" in r]
    assert [(r["model"], r["sampler"], r["network_evaluations"]) for r in by_class] == [
        ("cgan", "generator", 1), ("cddpm", "ddim-2, free guidance 0", 2), ("cddpm", "ddim-2, free guidance 3", 4),
        ("cddpm", "ddim-2, classifier 2", 2)]
    for r in by_class:
        assert r["samples"] == 20 and 0 <= r["class_accuracy"] <= 1 and r["chance"] == 0.1
        assert r["judge_heldout_accuracy"] > 0.5 and math.isfinite(r["kid"])
    latent = [r for r in records if r["measure"] == "sampling" and r["model"] == "latent-ddpm"]
    assert [r["sampler"] for r in latent] == ["ddpm-20", "ddim-2 (eta 0)", "ddim-2 (eta 0)"]
    saved = json.loads((tmp_path / "work" / "cpu" / "latent-ddpm" / "generative.json").read_text())
    assert saved["config"]["latent_vae"] == str(tmp_path / "work" / "cpu" / "latent-ddpm" / "vae")
