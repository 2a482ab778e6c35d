"""Checkpoints, resume, failure handling, determinism, recommendations."""

import csv
import json
import os
import shlex
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import pytest

import glocal_jax as gj
from glocal_jax import checkpoint
from glocal_jax import data as gdata
from glocal_jax import epochs
from glocal_jax import recommend
from glocal_jax import runs
from glocal_jax import training

from conftest import shared_data_dir
from scripts import run_script
from scripts import run_script_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = gj.GLocalKConfig(hidden=(12, 12), n_dim=3, pretrain_epochs=3,
                         finetune_epochs=3, pretrain_maxiter=3,
                         finetune_maxiter=3)


@pytest.fixture(scope="module")
def small_data():
  return gdata.split_validation(gdata.synthetic(40, 30, density=0.4, rank=3,
                                                seed=5), 0.1, seed=0)


@pytest.fixture(scope="module")
def epoch_fns():
  return epochs.make_epoch_fns(SMALL)


def without_timings(result):
  """``result`` without its wall times (every ``*seconds`` field),
  provenance (start time, command line) and the device memory the run read
  (the host's available memory, which changes from moment to moment)."""
  def strip(x):
    if isinstance(x, dict):
      return {k: strip(v) for k, v in x.items()
              if not k.endswith("seconds")
              and k not in ("provenance", "device_memory_bytes")}
    if isinstance(x, list):
      return [strip(v) for v in x]
    return x
  return strip(json.loads(json.dumps(result)))


def quiet(_):
  pass


def test_checkpoint_round_trip_is_exact_and_keeps_one_generation(tmp_path):
  params = gj.init_params(jax.random.PRNGKey(0), 5, 4, hidden=(3,),
                          conv_layers=2)
  key = jax.random.PRNGKey(7)
  checkpoint.save(str(tmp_path), params, key, {"epoch": 1},
                  arrays={"ids": np.arange(3)})
  assert os.listdir(tmp_path) == [checkpoint.FILENAME]
  checkpoint.save(str(tmp_path), params, key, {"epoch": 2},
                  arrays={"ids": np.arange(3)})
  assert sorted(os.listdir(tmp_path)) == sorted([checkpoint.FILENAME,
                                                 checkpoint.PREVIOUS])
  ckpt = checkpoint.load(str(tmp_path))
  assert jax.tree.structure(ckpt.params) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(ckpt.params), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(ckpt.key, key)
  assert ckpt.meta == {"epoch": 2} and ckpt.damaged == []
  np.testing.assert_array_equal(ckpt.arrays["ids"], np.arange(3))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    checkpoint.load(str(tmp_path / "none"))


def test_background_writer_writes_what_it_was_given_in_order(tmp_path):
  """Writer.save takes params and meta at the call (a history appended to
  afterwards is not in the file), writes the checkpoints in order, keeps
  one generation back, and leaves none unwritten at the end."""
  params = gj.init_params(jax.random.PRNGKey(0), 5, 4, hidden=(3,))
  key = jax.random.PRNGKey(7)
  history = []
  with checkpoint.Writer() as writer:
    for epoch in range(1, 4):
      history.append(epoch)
      params = jax.tree.map(lambda x: x + 1.0, params)
      writer.save(str(tmp_path), params, key, {"history": history})
    history.append(4)
  ckpt = checkpoint.load(str(tmp_path))
  assert ckpt.meta == {"history": [1, 2, 3]} and ckpt.damaged == []
  for a, b in zip(jax.tree.leaves(ckpt.params), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  os.remove(tmp_path / checkpoint.FILENAME)  # the generation before it:
  previous = checkpoint.load(str(tmp_path))
  assert previous.meta == {"history": [1, 2]}


def test_background_writer_raises_a_failed_write(tmp_path):
  blocked = tmp_path / "file"
  blocked.write_text("not a folder")
  writer = checkpoint.Writer()
  writer.save(str(blocked), {"w": np.ones(2)}, jax.random.PRNGKey(0), {})
  with pytest.raises(OSError):
    writer.wait()
  with pytest.raises(OSError):
    with checkpoint.Writer() as writer:
      writer.save(str(blocked / "sub"), {"w": np.ones(2)},
                  jax.random.PRNGKey(0), {})


def test_checkpoint_files_follow_the_umask(tmp_path):
  old = os.umask(0o022)
  try:
    checkpoint.save(str(tmp_path), {"w": jnp.ones(2)}, jax.random.PRNGKey(0),
                    {})
  finally:
    os.umask(old)
  mode = os.stat(tmp_path / checkpoint.FILENAME).st_mode & 0o777
  assert mode == 0o644


def truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def flip_byte(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 3] ^= 0xFF  # inside a stored array: its CRC fails
  path.write_bytes(bytes(data))


def empty(path):
  path.write_bytes(b"")


@pytest.mark.parametrize("damage", [truncate, flip_byte, empty])
def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
  params = {"w": jnp.arange(4000.0)}  # large enough for a byte to hit it
  for epoch in (1, 2):
    checkpoint.save(str(tmp_path), params, jax.random.PRNGKey(0),
                    {"epoch": epoch})
  damage(tmp_path / checkpoint.FILENAME)
  ckpt = checkpoint.load(str(tmp_path))
  assert ckpt.meta == {"epoch": 1}
  assert ckpt.path.endswith(checkpoint.PREVIOUS)
  assert len(ckpt.damaged) == 1 and "is damaged" in ckpt.damaged[0]
  damage(tmp_path / checkpoint.PREVIOUS)
  with pytest.raises(checkpoint.CheckpointError, match="No readable"):
    checkpoint.load(str(tmp_path))


def evaluated(config, data, seed, **options) -> dict:
  """``runs.evaluated_run``'s JSON (what metrics.json holds), quietly."""
  return runs.evaluated_run(config, data, seed, log=quiet,
                            **options).to_dict()


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, small_data,
                                                          epoch_fns):
  full = evaluated(SMALL, small_data, 1, epoch_fns=epoch_fns)
  ckpt_dir = str(tmp_path / "ckpt")
  part = evaluated(SMALL, small_data, 1, checkpoint_dir=ckpt_dir,
                   stop_after=4, epoch_fns=epoch_fns)
  assert not part["complete"] and len(part["history"]) == 4
  resumed = evaluated(SMALL, small_data, 1, checkpoint_dir=ckpt_dir,
                      resume=True, epoch_fns=epoch_fns)
  assert resumed["complete"]
  # Exactly the uninterrupted run: the checkpoint keeps the loss and
  # gradient epoch 4 ended at (optim.EpochStart), so the resumed epoch 5
  # (the second of its phase) starts from them, as the uninterrupted one
  # did, and does not evaluate them again.
  assert without_timings(resumed) == without_timings(full)
  # Likewise stopped in the middle of pre-training.
  early_dir = str(tmp_path / "early")
  evaluated(SMALL, small_data, 1, checkpoint_dir=early_dir, stop_after=2,
            epoch_fns=epoch_fns)
  early = evaluated(SMALL, small_data, 1, checkpoint_dir=early_dir,
                    resume=True, epoch_fns=epoch_fns)
  assert without_timings(early) == without_timings(full)
  ckpt = checkpoint.load(ckpt_dir)
  assert (ckpt.meta["phase"], ckpt.meta["epoch"]) == ("finetune", 3)
  assert "selected" in full and full["best"]["rmse"] <= full["final"]["rmse"]
  with pytest.raises(ValueError, match="another configuration.*seed: 1 in "
                     "the checkpoint, 2 now"):
    evaluated(SMALL, small_data, 2, checkpoint_dir=ckpt_dir, resume=True,
              epoch_fns=epoch_fns)
  # The message names the field that differs, and only that one.
  with pytest.raises(ValueError, match=r"\(lambda_2: [0-9.]+ in the "
                     r"checkpoint, 123.0 now\)"):
    evaluated(SMALL.replace(lambda_2=123.0), small_data, 1,
              checkpoint_dir=ckpt_dir, resume=True)
  # A finished run goes on for more fine-tuning epochs; not for more
  # pre-training, which it has finished.
  longer = SMALL.replace(finetune_epochs=SMALL.finetune_epochs + 2)
  extended = evaluated(longer, small_data, 1, checkpoint_dir=ckpt_dir,
                       resume=True)
  assert extended["complete"]
  assert len(extended["history"]) == len(resumed["history"]) + 2
  assert extended["history"][:len(resumed["history"])] == (
      json.loads(json.dumps(resumed["history"])))
  assert extended["final"]["epoch"] == longer.finetune_epochs
  with pytest.raises(ValueError, match="pretrain_epochs: "):
    evaluated(longer.replace(pretrain_epochs=SMALL.pretrain_epochs + 1),
              small_data, 1, checkpoint_dir=ckpt_dir, resume=True)


def test_same_seed_same_metrics(small_data, epoch_fns):
  a = evaluated(SMALL, small_data, 3, epoch_fns=epoch_fns)
  b = evaluated(SMALL, small_data, 3, epoch_fns=epoch_fns)
  c = evaluated(SMALL, small_data, 4, epoch_fns=epoch_fns)
  assert without_timings(a) == without_timings(b)
  assert a["history"][-1]["loss"] != c["history"][-1]["loss"]


def test_non_finite_epoch_stops_and_keeps_last_good_checkpoint(
    tmp_path, small_data, epoch_fns):
  calls = {"n": 0}

  def poisoned(params, data, start):
    calls["n"] += 1
    params, stats = epoch_fns["finetune"](params, data, start)
    if calls["n"] == 2:
      params = jax.tree.map(lambda x: x * jnp.nan, params)
      stats = stats._replace(loss=jnp.nan)
    return params, stats

  ckpt_dir = str(tmp_path)
  with pytest.raises(gj.NonFiniteError, match="finetune epoch 2"):
    evaluated(SMALL, small_data, 0, checkpoint_dir=ckpt_dir,
              epoch_fns={**epoch_fns, "finetune": poisoned})
  ckpt = checkpoint.load(ckpt_dir)
  assert (ckpt.meta["phase"], ckpt.meta["epoch"]) == ("finetune", 1)
  assert training.all_finite(ckpt.params)


def test_recommendation_functions():
  scores = jnp.asarray([4.0, 6.0, 3.0, 4.5])
  rated = jnp.asarray([False, False, True, False])
  items, values = recommend.top_k_unrated(scores, rated, k=2)
  np.testing.assert_array_equal(items, [1, 3])
  np.testing.assert_allclose(values, [5.0, 4.5])  # clipped to 5


def assert_provenance(block, script):
  """The provenance block records how the file was made."""
  assert block["command"].startswith(f"python experiments/{script}")
  assert block["argv"][0].endswith(script)
  head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                        capture_output=True, text=True).stdout.strip()
  assert block["git_commit"] == head and isinstance(block["git_dirty"], bool)
  for package in ("jax", "jaxlib", "jaxopt", "optax", "numpy", "scipy"):
    assert block["versions"][package]
  assert block["device"]["platform"] == "cpu" and block["device"]["count"] >= 1
  assert block["cpu"]["cores"] == os.cpu_count() and block["cpu"]["model"]
  assert block["cpu"]["used_cores"] == len(os.sched_getaffinity(0))
  if os.path.exists("/proc/cpuinfo"):  # the widest vector extension, read
    words = set(open("/proc/cpuinfo").read().split())  # here independently
    widest = ("AVX-512" if "avx512f" in words else "AVX2" if "avx2" in words
              else block["cpu"]["vector"])
    assert block["cpu"]["vector"] == widest
  assert block["python"] == sys.version.split()[0]
  assert block["started"][:4].isdigit()


TINY = ["--dataset=synthetic", "--synthetic_items=30", "--synthetic_users=20",
        "--synthetic_density=0.4", "--hidden=8", "--n_dim=2",
        "--pretrain_maxiter=2", "--finetune_maxiter=2", "--optimizer=scipy"]


def test_parse_benchmark_loads_what_it_wrote(tmp_path):
  out = tmp_path / "parse.json"
  proc = run_script("parse_benchmark.py", "--lines=3000", "--users=90",
                    "--movies=70", f"--work_dir={tmp_path / 'data'}",
                    "--readers=glocal_jax", f"--output_json={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.load(open(out))
  assert_provenance(result["provenance"], "parse_benchmark.py")
  # An independent reading of the file written: distinct pairs, sorted.
  table = np.loadtxt(tmp_path / "data" / "ratings.csv", delimiter=",",
                     skiprows=1)
  assert table.shape == (3000, 4)
  assert len({(u, m) for u, m in table[:, :2].tolist()}) == 3000
  assert np.all(np.diff(table[:, 0]) >= 0)
  assert set(np.unique(table[:, 2] * 2)) <= set(range(1, 11))
  for load in result["loads"].values():
    assert load["ratings"] == 3000 and load["peak_rss_bytes"] > 0
    assert load["shape"] == [len(np.unique(table[:, 1])),
                             len(np.unique(table[:, 0]))]
  assert (tmp_path / "data").is_dir()
  parsed = result["parses"]["glocal_jax"]
  assert parsed["ratings"] == 3000
  assert parsed["rating_sum"] == pytest.approx(table[:, 2].sum())


def test_scaling_script_times_each_representation(tmp_path):
  """Two representations of one point: each row timed in its own process
  with its provenance, and the two give the same losses (they are the
  same model). A process of its own: scaling.py starts its children
  with its own stdout."""
  proc = run_script_process("scaling.py", "--points=ml-100k:5000",
                    "--representations=dense,sparse", "--preset=ml-100k",
                    "--repeats=1", f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.load(open(tmp_path / "scaling.json"))
  assert_provenance(result["provenance"], "scaling.py")
  rows = {r["representation"]: r for r in result["rows"]}
  assert set(rows) == {"dense", "sparse"}
  for name, row in rows.items():
    assert row["plan"]["name"] == name and row["ratings"] == 5000
    assert_provenance(row["provenance"], "benchmark.py")
    for phase in ("pretrain", "finetune"):
      assert row[phase]["ms_per_evaluation"] > 0
  for phase in ("pretrain", "finetune"):
    np.testing.assert_allclose(rows["sparse"][phase]["loss"],
                               rows["dense"][phase]["loss"], rtol=1e-4)


def test_benchmark_script_compares_drivers(tmp_path):
  """Each driver's row: 2 + 2 epochs of 2 iterations each; every epoch's
  start is evaluated once except where optax takes it from the previous
  epoch of its phase (the second epoch of each phase)."""
  out = tmp_path / "bench.json"
  proc = run_script("benchmark.py", *TINY[:-1], "--pretrain_epochs=2",
                    "--finetune_epochs=2", "--drivers=optax,jaxopt,scipy",
                    "--noisolate", f"--output_json={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.load(open(out))
  assert_provenance(result["provenance"], "benchmark.py")
  rows = {r["driver"]: r for r in result["rows"]}
  assert all("error" not in r for r in rows.values()), rows
  fresh_starts = {"optax": 2, "jaxopt": 4}
  for driver, starts in fresh_starts.items():
    assert rows[driver]["iterations"] == 8
    assert rows[driver]["evaluations"] >= 8 + starts
    assert 0 < rows[driver]["best_rmse"] < 5
  assert rows["scipy"]["evaluations"] >= rows["scipy"]["iterations"] + 4
  assert {d: r["first_step"] for d, r in rows.items()} == {
      "optax": "carried", "jaxopt": "carried", "scipy": "unit"}


@pytest.mark.parametrize("flag,message", [
    ("--pretrain_epochs=-1", "pretrain_epochs must be non-negative"),
    ("--finetune_epochs=0", "finetune_epochs must be positive"),
    ("--pretrain_maxiter=0", "pretrain_maxiter must be positive"),
    ("--hidden=500,0", "hidden sizes must be positive"),
    ("--kernel_size=4", "kernel_size must be a positive odd"),
    ("--lambda_2=-1", "lambda_2 must be finite and >= 0"),
    ("--lambda_2=inf", "lambda_2 must be finite and >= 0, got inf"),
    ("--lambda_s=-0.1", "lambda_s must be finite and >= 0"),
    ("--dot_scale=0", "dot_scale must be finite and non-zero"),
    ("--optimizer=scipy --first_step=carried", "first_step='unit'"),
    ("--dataset=imdb", "dataset"),
    ("--data_dir=/nonexistent", "not found in /nonexistent"),
])
def test_train_script_rejects_bad_flags(tmp_path, flag, message):
  base = ["--dataset=ml-100k", f"--output_dir={tmp_path}"]
  proc = run_script("train.py", *base, *flag.split())
  assert proc.returncode != 0
  assert message in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "metrics.json").exists()


def test_train_script_nan_exits_non_zero(tmp_path):
  proc = run_script("train.py", *TINY, "--optimizer=jaxopt", "--lambda_2=1e38",
                    "--pretrain_epochs=1", "--finetune_epochs=1",
                    f"--output_dir={tmp_path}",
                    f"--checkpoint_dir={tmp_path / 'ckpt'}")
  assert proc.returncode == 2, proc.stderr
  assert "pretrain epoch 1" in proc.stderr and "non-finite" in proc.stderr
  assert "no checkpoint was written" in proc.stderr  # none claimed


def test_train_resume_and_recommend_scripts(tmp_path):
  ckpt = str(tmp_path / "ckpt")
  args = [*TINY, "--pretrain_epochs=2", "--finetune_epochs=2",
          "--validation_fraction=0.1"]
  full = run_script("train.py", *args, f"--output_dir={tmp_path / 'full'}")
  assert full.returncode == 0, full.stderr
  part = run_script("train.py", *args, f"--output_dir={tmp_path / 'part'}",
                    f"--checkpoint_dir={ckpt}", "--stop_after=3")
  assert part.returncode == 0, part.stderr
  resumed = run_script("train.py", *args, f"--output_dir={tmp_path / 'part'}",
                       f"--checkpoint_dir={ckpt}", "--resume")
  assert resumed.returncode == 0, resumed.stderr
  load = lambda d: without_timings(json.load(open(tmp_path / d /
                                                  "metrics.json")))
  assert load("part") == load("full")
  metrics = json.load(open(tmp_path / "full" / "metrics.json"))
  for key in ("dataset", "seed", "config", "device", "plan", "history",
              "best", "final", "selected", "train_seconds",
              "evaluation_seconds", "compile_seconds"):
    assert key in metrics
  assert_provenance(metrics["provenance"], "train.py")
  # best and final are the minimum and the last of the fine-tuning history.
  fine = [h["metrics"]["test_rmse"] for h in metrics["history"]
          if h["phase"] == "finetune"]
  assert metrics["best"]["rmse"] == min(fine)
  assert metrics["final"]["rmse"] == fine[-1]
  # The run without --checkpoint_dir wrote one to OUTPUT_DIR/checkpoint.
  default = tmp_path / "full" / "checkpoint"
  assert (default / "checkpoint.npz").exists()
  assert f"--checkpoint_dir={default}" in full.stdout
  rec = run_script("recommend.py", f"--checkpoint_dir={default}", "--user=3",
                   "--k=4")
  assert rec.returncode == 0, rec.stderr
  lines = [l for l in rec.stdout.splitlines() if l.startswith(("1\t", "2\t",
                                                              "3\t", "4\t"))]
  assert len(lines) == 4
  scores = [float(l.split("\t")[2]) for l in lines]
  assert scores == sorted(scores, reverse=True)
  assert all(1.0 <= s <= 5.0 for s in scores)
  bad = run_script("recommend.py", f"--checkpoint_dir={ckpt}", "--user=999")
  assert bad.returncode == 2 and "unknown user id '999'" in bad.stderr


def test_batched_seeds_equal_separate_runs(small_data, epoch_fns):
  """Seeds as one program, vmapped and with lax.map, equal separate runs."""
  alone = [evaluated(SMALL, small_data, seed, epoch_fns=epoch_fns)
           for seed in (3, 4)]
  for seed_batching in ("vmap", "map"):
    together = runs.fit_seeds(
        SMALL, small_data, [3, 4], log=quiet,
        epoch_fns=epochs.make_epoch_fns(SMALL, batched=True,
                                        seed_batching=seed_batching)
    ).to_dict()
    for i, own in enumerate(alone):
      for h_together, h_alone in zip(together["history"], own["history"],
                                     strict=True):
        np.testing.assert_allclose(h_together["loss"][i], h_alone["loss"],
                                   rtol=1e-4)
      np.testing.assert_allclose(together["per_seed"][i]["best"]["rmse"],
                                 own["best"]["rmse"], rtol=1e-4)
    rmses = [s["best"]["rmse"] for s in together["per_seed"]]
    assert together["mean"]["best"]["rmse"] == pytest.approx(np.mean(rmses))
    assert together["std"]["best"]["rmse"] == pytest.approx(np.std(rmses))
    assert "selected" in together["ensemble"]


def test_pretrain_snapshots_equal_runs_from_scratch(small_data):
  fns = epochs.make_epoch_fns(SMALL, batched=True, seed_batching="map")
  snapshots = runs.pretrain_snapshots(SMALL, small_data, [1, 2], [0, 2],
                                      log=quiet, epoch_fns=fns)
  assert sorted(snapshots) == [0, 2]
  for done in (0, 2):
    config = SMALL.replace(pretrain_epochs=done)
    scratch = runs.fit_seeds(config, small_data, [1, 2], log=quiet,
                             epoch_fns=fns).to_dict()
    resumed = runs.fit_seeds(config, small_data, [1, 2], log=quiet,
                             epoch_fns=fns,
                             params=snapshots[done][0],
                             start=("pretrain", done)).to_dict()
    finetuned = [h for h in scratch["history"] if h["phase"] == "finetune"]
    assert len(resumed["history"]) == len(finetuned) == SMALL.finetune_epochs
    for a, b in zip(resumed["history"], finetuned, strict=True):
      np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
      np.testing.assert_allclose(a["metrics"]["models"]["test_rmse"],
                                 b["metrics"]["models"]["test_rmse"],
                                 rtol=1e-5)


def test_table1_script_writes_the_promised_rows(tmp_path):
  proc = run_script("table1.py", "--datasets=synthetic,ml-1m",
                    f"--data_root={tmp_path / 'nothing'}", "--models=sparsefc",
                    "--synthetic_items=30", "--synthetic_users=20",
                    "--synthetic_density=0.4", "--hidden=8", "--n_dim=2",
                    "--pretrain_epochs=1", "--finetune_epochs=1",
                    "--pretrain_maxiter=2", "--finetune_maxiter=2",
                    "--seeds=2", f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr
  assert "skipping ml-1m" in proc.stdout
  written = json.load(open(tmp_path / "table1.json"))
  assert_provenance(written["provenance"], "table1.py")
  rows = written["rows"]
  assert [(r["model"], r["protocol"]) for r in rows] == [
      ("sparsefc", "paper"), ("sparsefc", "validation")]
  for row in rows:
    for key in ("dataset", "model", "protocol", "seeds", "rmse_mean",
                "rmse_std", "mae_mean", "ndcg_mean", "ensemble_rmse",
                "seconds"):
      assert key in row
    assert row["seeds"] == 2 and len(row["per_seed_rmse"]) == 2
    assert row["rmse_mean"] == pytest.approx(np.mean(row["per_seed_rmse"]))
  assert (tmp_path / "table1.csv").read_text().startswith("dataset,model,")


SWEEP = ["--datasets=synthetic", "--synthetic_items=30", "--synthetic_users=20",
         "--synthetic_density=0.4", "--hidden=8", "--n_dim=2",
         "--pretrain_maxiter=2", "--finetune_maxiter=2", "--finetune_epochs=2",
         "--seeds=2", "--seed_batching=map"]


def test_figure3_script_shares_pretraining_across_the_grid(tmp_path):
  proc = run_script("figure3.py", *SWEEP, "--pretrain_epoch_grid=0,1,3",
                    f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.count("pre-training to 3 epochs") == 2  # one a protocol
  rows = json.load(open(tmp_path / "figure3.json"))["rows"]
  assert [(r["protocol"], r["pretrain_epochs"]) for r in rows] == [
      (p, e) for p in ("paper", "validation") for e in (0, 1, 3)]
  for row in rows:
    assert row["config"]["pretrain_epochs"] == row["pretrain_epochs"]
    assert row["rmse_mean"] == pytest.approx(np.mean(row["per_seed_rmse"]))


@pytest.mark.parametrize("script,flags,rows", [
    ("table2.py", ["--variants=base,conv_3"], 2),
    ("figure2.py", ["--ratios=0.5,1"], 4),
    ("figure2.py", ["--ratios=0.5,1", "--models=user-mean"], 2)])
def test_sweep_scripts_write_a_row_per_setting(tmp_path, script, flags, rows):
  proc = run_script(script, *SWEEP, "--pretrain_epochs=1", "--seeds=1",
                    "--protocols=paper", *flags, f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr
  name = script[:-3]
  written = json.load(open(tmp_path / f"{name}.json"))["rows"]
  assert len(written) == rows
  assert all(r["protocol"] == "paper" and r["seeds"] == 1 for r in written)
  with open(tmp_path / f"{name}.csv", newline="") as f:  # read back whole
    table = list(csv.DictReader(f))
  scalars = [k for k, v in written[0].items()
             if not isinstance(v, (dict, list))]
  assert len(table) == rows and all(list(t) == scalars for t in table)
  for back, row in zip(table, written):
    assert back["protocol"] == row["protocol"]
    assert float(back["rmse_mean"]) == pytest.approx(row["rmse_mean"])
  if script == "table2.py":  # a name with commas stays one column
    assert table[0]["variant"] == "3x3, 1 layer, weighted"
  if "--models=user-mean" in flags:  # each user's mean of the kept ratings
    for row in written:
      subset = gdata.subsample_train(gdata.synthetic(30, 20, 0.4, 10),
                                     row["ratio"], 0)
      assert row["rmse_mean"] == pytest.approx(ref.user_mean_rmse(
          np.asarray(subset.train.to_dense()),
          np.asarray(subset.test.to_dense())), rel=1e-5)
  if script == "table2.py":  # one shared pre-training, same as from scratch
    assert proc.stdout.count("snapshot") == 1
    config = gj.preset("ml-100k", hidden=(8,), n_dim=2, pretrain_maxiter=2,
                       finetune_maxiter=2, finetune_epochs=2,
                       pretrain_epochs=1, conv_layers=3)
    scratch = runs.fit_seeds(
        config, gdata.synthetic(30, 20, 0.4, 10), [0], log=quiet,
        epoch_fns=epochs.make_epoch_fns(config, batched=True,
                                        seed_batching="map")).to_dict()
    row = [r for r in written if r["variant"] == "3"][0]
    assert row["rmse_mean"] == pytest.approx(
        scratch["mean"]["best"]["rmse"], rel=1e-5)


def test_input_scale_script_measures_each_variant(tmp_path):
  proc = run_script("input_scale.py", *SWEEP, "--pretrain_epochs=1",
                    "--protocols=paper", "--variants=base,conv_3,mean",
                    f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr
  rows = json.load(open(tmp_path / "input_scale.json"))["rows"]
  assert [r["factor"] for r in rows] == [
      "reference", "base", "conv_layers", "aggregation"]
  data = gdata.synthetic(30, 20, 0.4, 10)  # the script's synthetic data
  ratings = data.train.values
  assert rows[0]["input_observed_mean"] == pytest.approx(ratings.mean())
  assert rows[0]["input_max"] == pytest.approx(ratings.max())
  # "mean" aggregation: GK is the mean of each seed's fresh kernel bank.
  config = gj.GLocalKConfig(hidden=(8,), n_dim=2)
  banks = runs.init_seeds(config, [0, 1], data.shape)["kernel_banks"][0]
  expected = np.mean(np.abs(np.asarray(banks).mean(axis=1)).max(axis=1))
  assert rows[3]["max_abs_kernel"] == pytest.approx(expected, rel=1e-5)
  for row in rows:
    assert 0 <= row["saturated_fraction"] <= 1 and row["seeds"] == 2
  assert (tmp_path / "input_scale.csv").read_text().count("\n") == 5


def sweep_rows():
  row = {"dataset": "ml-100k", "model": "glocal-k", "pretrain_epochs": 10,
         "protocol": "paper", "seeds": 1, "rmse_mean": 0.91234,
         "rmse_std": 0.0, "mae_mean": 0.7, "ndcg_mean": 0.9,
         "ensemble_rmse": 0.91234, "seconds": 12.0, "device": "cpu",
         "per_seed_rmse": [0.91234]}
  return [row, {**row, "pretrain_epochs": 20, "rmse_mean": 0.90111,
                "per_seed_rmse": [0.90111]}]


def make_results(tmp_path, docs=()):
  """make_results.py's rendering, in this process (what its main calls)."""
  scripts = os.path.join(ROOT, "experiments")
  if scripts not in sys.path:
    sys.path.insert(0, scripts)
  import make_results as script  # pylint: disable=g-import-not-at-top
  return script.write_results(str(tmp_path), str(tmp_path / "R.md"),
                              [str(d) for d in docs])


def test_make_results_renders_each_file_with_its_provenance(tmp_path):
  proc = run_script("figure3.py", *SWEEP, "--pretrain_epoch_grid=0",
                    "--protocols=paper", "--seeds=1",
                    f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr
  os.rename(tmp_path / "figure3.json", tmp_path / "figure3_new_cpu.json")
  pinned = json.load(open(tmp_path / "figure3_new_cpu.json"))
  pinned["provenance"]["cpu"].update(cores=8, used_cores=1)  # taskset -c 0
  (tmp_path / "figure3_pinned_cpu.json").write_text(json.dumps(pinned))
  (tmp_path / "figure3_old_h100.json").write_text(
      json.dumps({"rows": sweep_rows()}))
  doc = tmp_path / "doc.md"
  doc.write_text("text\n<!-- results:figure3_new_cpu -->\nold\n"
                 "<!-- /results:figure3_new_cpu -->\nmore\n")
  make_results(tmp_path, [doc])
  text = (tmp_path / "R.md").read_text()
  new = json.load(open(tmp_path / "figure3_new_cpu.json"))
  section = text[text.index("### `results/figure3_new_cpu.json`"):]
  # The variables that change what XLA does are part of the command (the
  # tests set XLA_FLAGS, conftest).
  assert new["provenance"]["environment"]["XLA_FLAGS"] == os.environ[
      "XLA_FLAGS"]
  assert section.splitlines()[2] == (
      f"`XLA_FLAGS={shlex.quote(os.environ['XLA_FLAGS'])} "
      f"{new['provenance']['command']}`")
  assert new["provenance"]["git_commit"][:10] in section.splitlines()[4]
  rmse = new["rows"][0]["rmse_mean"]
  assert f"| {rmse:.4f} |" in section
  old = text[text.index("### `results/figure3_old_h100.json`"):]
  assert old.splitlines()[2].startswith("This file records no provenance")
  assert "| 0.9123 |" in old and "| 0.9011 |" in old
  assert "CPU (cores not recorded)" in old
  assert "| CPU (8 cores, pinned to 1) |" in text
  assert "2-core CPU" not in text
  rendered = doc.read_text()
  assert rendered.startswith("text\n<!-- results:figure3_new_cpu -->\n###")
  assert f"| {rmse:.4f} |" in rendered and "old" not in rendered
  assert rendered.endswith("<!-- /results:figure3_new_cpu -->\nmore\n")
  first = (tmp_path / "R.md").read_bytes()
  make_results(tmp_path, [doc])
  assert (tmp_path / "R.md").read_bytes() == first  # deterministic


def test_make_results_draws_the_figures(tmp_path):
  pytest.importorskip("matplotlib")
  (tmp_path / "figure3_old_h100.json").write_text(
      json.dumps({"rows": sweep_rows()}))
  make_results(tmp_path)
  assert (tmp_path / "figure3.png").stat().st_size > 0
  assert "![figure3]" in (tmp_path / "R.md").read_text()


def test_make_results_glance_table_takes_each_protocol_and_the_best_mean(
    tmp_path):
  """The at-a-glance table: one row per data set, from suite and Table 1
  files alike; the folds' row is their mean; a mean predictor's column is
  the lowest of them; the published number is the best without side
  information."""
  row = lambda **kw: {"protocol": "paper", "seeds": 5, "rmse_std": 0.001,
                      **kw}
  suite = {"rows": [
      row(dataset="flixster", entry="flixster", model="glocal-k",
          rmse_mean=0.8861),
      row(dataset="flixster", entry="flixster", model="glocal-k",
          protocol="validation", rmse_mean=0.8883),
      row(dataset="flixster", entry="flixster", model="user-mean",
          rmse_mean=0.8933),
      row(dataset="flixster", entry="flixster", model="item-mean",
          rmse_mean=1.1363),
      row(dataset="ml-100k", entry="ml-100k-folds", fold="2",
          model="glocal-k", rmse_mean=0.7),
      row(dataset="ml-100k", entry="ml-100k-folds", fold="1-5",
          model="glocal-k", rmse_mean=0.8777)],
      "published": {"flixster": [["IGMC", 0.872, False, "s"],
                                 ["GC-MC+side", 0.8, True, "s"]]}}
  (tmp_path / "suite_x_cpu.json").write_text(json.dumps(suite))
  (tmp_path / "table1_douban_cpu.json").write_text(json.dumps({"rows": [
      row(dataset="douban", model="sparsefc", protocol="validation",
          rmse_mean=0.7311)]}))
  make_results(tmp_path)
  text = (tmp_path / "R.md").read_text()
  glance = text[text.index("## At a glance"):text.index("## The benchmark")]
  lines = [line for line in glance.splitlines() if line.startswith("| ")]
  assert lines[0] == ("| data set | glocal-k (validation) | glocal-k (paper) "
                      "| sparsefc (validation) | best mean predictor | "
                      "best published | glocal-k (validation) - best "
                      "published |")
  assert lines[1:] == [
      "| ml-100k-folds | - | 0.8777 +- 0.001 | - | - | - | - |",
      "| douban | - | - | 0.7311 +- 0.001 | - | - | - |",
      "| flixster | 0.8883 +- 0.001 | 0.8861 +- 0.001 | - | 0.8933 "
      "(user-mean) | 0.872 (IGMC) | +0.016 (+1.9%) |"]


def test_own_csv_trains_beats_item_mean_and_recommends(tmp_path):
  """ML-100K rewritten as a user's own CSV: header, string ids, a
  timestamp column; split by the file loader. Hidden layers of 100 (the
  preset's 500 take twice as long and beat the item mean by more)."""
  source = shared_data_dir("ml-100k")
  lines = ["user,item,rating,timestamp"]
  for name in ("u1.base", "u1.test"):
    for line in open(os.path.join(source, name)):
      u, i, r, t = line.split()
      lines.append(f"u_{u},m{i},{r},{t}")
  csv = tmp_path / "ratings.csv"
  csv.write_text("\n".join(lines) + "\n")
  out = tmp_path / "run"
  proc = run_script("train.py", "--dataset=file", f"--train_file={csv}",
                    "--test_fraction=0.2", "--hidden=100,100",
                    "--pretrain_epochs=4", "--finetune_epochs=4",
                    f"--output_dir={out}")
  assert proc.returncode == 0, proc.stderr
  best = json.load(open(out / "metrics.json"))["best"]["rmse"]
  data = gdata.load_ratings_file(str(csv), test_fraction=0.2)
  item_mean = float(gj.evaluate(gj.mean_predictions(
      data.train, data.test.items, data.test.users, "item"), data.test,
      *data.scale.bounds)["rmse"])
  assert best < item_mean - 0.02, (best, item_mean)
  rec = run_script("recommend.py", f"--checkpoint_dir={out / 'checkpoint'}",
                   "--user=u_1", "--k=3")
  assert rec.returncode == 0, rec.stderr
  items = [l.split("\t")[1] for l in rec.stdout.splitlines()
           if l[:2] in ("1\t", "2\t", "3\t")]
  assert len(items) == 3 and all(i.startswith("item m") for i in items)
