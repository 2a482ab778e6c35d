"""What a user gets from bad input and long runs: a clear message, an exit
status of 2, no traceback, and no lost or silently wrong result."""

import csv
import json
import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax.config import GLocalKConfig
from glocal_jax.runs import progress

from scripts import run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))
import reporting  # pylint: disable=g-import-not-at-top,wrong-import-position

TINY = ["--dataset=synthetic", "--synthetic_items=30", "--synthetic_users=20",
        "--synthetic_density=0.4", "--hidden=8", "--n_dim=2",
        "--pretrain_epochs=1", "--finetune_epochs=2", "--pretrain_maxiter=2",
        "--finetune_maxiter=2"]


def assert_clear_failure(proc, message):
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert message in proc.stderr, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr


def test_unwritable_output_dir_fails_before_any_work(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  proc = run_script("train.py", *TINY, f"--output_dir={blocker / 'out'}")
  assert_clear_failure(proc, "cannot write results to")
  assert "epoch" not in proc.stdout  # nothing was trained


def test_resume_on_other_data_is_refused_naming_both(tmp_path):
  ckpt = tmp_path / "ckpt"
  first = run_script("train.py", *TINY, f"--output_dir={tmp_path / 'a'}",
                     f"--checkpoint_dir={ckpt}", "--stop_after=2")
  assert first.returncode == 0, first.stderr[-2000:]
  before = (ckpt / "checkpoint.npz").read_bytes()
  # Same shape and preset, other ratings.
  other = run_script("train.py", *TINY, "--synthetic_rank=3",
                     f"--output_dir={tmp_path / 'b'}",
                     f"--checkpoint_dir={ckpt}", "--resume")
  assert_clear_failure(other, "was trained on")
  assert other.stderr.count("30 x 20") == 2  # both data sets described
  assert (ckpt / "checkpoint.npz").read_bytes() == before  # untouched


def test_no_training_ratings_is_refused(tmp_path):
  ratings = np.full((4, 5), 3.0)
  with h5py.File(tmp_path / "training_test_dataset.mat", "w") as f:
    f["M"], f["Otraining"] = ratings, np.zeros((4, 5))
    f["Otest"] = np.eye(4, 5)
  with pytest.raises(gdata.DataFormatError, match="no training ratings"):
    gdata.load_douban(str(tmp_path))


def test_douban_overlap_and_non_integer_ratings_are_refused(tmp_path):
  path = tmp_path / "training_test_dataset.mat"
  with h5py.File(path, "w") as f:
    f["M"], f["Otraining"], f["Otest"] = (np.full((4, 5), 3.0), np.eye(4, 5),
                                          np.eye(4, 5))
  with pytest.raises(gdata.DataFormatError, match="both"):
    gdata.load_douban(str(tmp_path))
  with h5py.File(path, "w") as f:
    f["M"], f["Otraining"] = np.full((4, 5), 3.5), np.eye(4, 5)
    f["Otest"] = np.roll(np.eye(4, 5), 1, axis=1)
  with pytest.raises(gdata.DataFormatError, match="3.5"):
    gdata.load_douban(str(tmp_path))


@pytest.mark.parametrize("flag,message", [
    ("--kernel_size=31", "larger than the 30 x 20"),
    ("--hidden=200000,200000", "training needs about"),
])
def test_sizes_that_cannot_fit_are_refused_before_work(tmp_path, flag,
                                                       message):
  proc = run_script("train.py", *TINY, flag, f"--output_dir={tmp_path}")
  assert_clear_failure(proc, message)
  assert not (tmp_path / "metrics.json").exists()


def test_non_finite_numbers_become_null_with_a_reason(tmp_path):
  path = tmp_path / "out.json"
  nulls = reporting.write_json(str(path), {"ndcg": math.nan, "rmse": 0.9,
                                           "per_seed": [1.0, math.inf]})

  def refuse(constant):
    raise AssertionError(f"non-standard JSON constant {constant}")

  written = json.loads(path.read_text(), parse_constant=refuse)
  assert written["ndcg"] is None and written["per_seed"] == [1.0, None]
  assert written["rmse"] == 0.9
  assert set(written["nulls"]) == set(nulls) and len(nulls) == 2


@pytest.mark.parametrize("script,own_flags", [
    ("train.py", ["--dataset", "--data_dir", "--hidden", "--output_dir",
                  "--resume", "--devices"]),
    ("table1.py", ["--datasets", "--seeds", "--output_dir", "--models"]),
    ("input_scale.py", ["--datasets", "--seeds", "--output_dir",
                        "--variants"]),
    ("benchmark.py", ["--drivers", "--representations", "--dataset"]),
])
def test_help_lists_every_flag_the_script_reads(script, own_flags):
  proc = run_script(script, "--help")  # absl exits with 1 after --help
  assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
  for flag in own_flags:
    assert f"{flag}:" in proc.stdout or f"--[no]{flag[2:]}:" in proc.stdout, (
        flag)
  if script == "train.py":  # preset defaults are shown
    assert "Default: the dataset's preset" in proc.stdout


def test_eta_comes_from_measured_seconds_per_iteration():
  config = GLocalKConfig(pretrain_epochs=2, finetune_epochs=3,
                         pretrain_maxiter=4, finetune_maxiter=5)
  record = lambda phase, epoch, seconds, iterations: gj.EpochRecord(
      phase, epoch, 0.0, iterations, iterations, seconds,
      evaluation_seconds=0.5)
  history = [record("pretrain", 1, 2.0, 4)]
  # Pre-training: 0.5 s per iteration; fine-tuning not run yet: 3x that.
  # Left: 1 pre-training epoch (4 iterations) and 3 fine-tuning epochs
  # (5 iterations each); the first evaluation (which compiles) not counted.
  expected = 4 * 0.5 + 3 * 5 * 1.5
  assert progress.eta_seconds(history, config, 3.0) == pytest.approx(
      expected)
  history.append(record("pretrain", 2, 3.0, 4))
  history.append(record("finetune", 1, 10.0, 5))
  # Measured fine-tuning rate now: 2 s per iteration; 2 epochs left.
  assert progress.eta_seconds(history, config, 3.0) == pytest.approx(
      2 * (5 * 2.0 + 0.5))
  # A phase's cold first epoch (and the first evaluation, which compiles)
  # no longer counts once later ones are measured: 1 s per iteration.
  history[0].evaluation_seconds = 30.0
  history.append(record("finetune", 2, 5.0, 5))
  assert progress.eta_seconds(history, config, 3.0) == pytest.approx(
      5 * 1.0 + 0.5)


def test_train_says_what_it_is_doing(tmp_path):
  proc = run_script("train.py", *TINY, f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = proc.stdout
  for step in ("loaded", "compiling", "ETA"):
    assert step.lower() in out.lower(), out
  assert out.lower().index("compiling") < out.index("ETA")


def test_a_held_or_finished_output_folder_is_refused(tmp_path):
  """A second run into a folder that a live run holds is refused before any
  work (exit 2); a lock left by a dead process is taken over; a finished
  run is not overwritten without --overwrite; a run writes its training
  curves and ends with a short table."""
  out = tmp_path / "run"
  out.mkdir()
  alive = subprocess.Popen([sys.executable, "-c", "input()"],
                           stdin=subprocess.PIPE)
  (out / ".lock").write_text(str(alive.pid))
  held = run_script("train.py", *TINY, f"--output_dir={out}")
  alive.communicate("")
  assert_clear_failure(held, f"another run (process {alive.pid}) is "
                       f"writing into {out}")
  assert "loaded" not in held.stdout and not (out / "metrics.json").exists()
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  (out / ".lock").write_text(dead)
  first = run_script("train.py", *TINY, f"--output_dir={out}")
  assert first.returncode == 0, first.stderr[-2000:]
  assert not (out / ".lock").exists()
  assert "Unable to initialize backend" not in first.stderr
  assert "model: item-based autoencoder 20 -> 8 -> 20 on 30 rows" in (
      first.stdout)
  table = first.stdout[first.stdout.index("epoch         test RMSE") - 25:
                       ].splitlines()
  # The honest protocol by default, first; every row is one epoch's.
  assert table[1].startswith("selected on validation")
  assert table[2].startswith("best on test (paper)")
  assert table[3].startswith("last epoch") and "finetune 2" in table[3]
  with open(out / "history.csv") as f:
    rows = list(csv.DictReader(f))
  history = json.load(open(out / "metrics.json"))["history"]
  for line in table[1:4]:
    phase, epoch, *values = line[24:].split()
    metrics = next(h["metrics"] for h in history
                   if (h["phase"], h["epoch"]) == (phase, int(epoch)))
    assert [float(v) for v in values] == pytest.approx(
        [metrics[k] for k in ("test_rmse", "test_mae", "test_ndcg",
                              "valid_rmse")], abs=5e-5)
  assert [(r["phase"], int(r["epoch"])) for r in rows] == [
      (h["phase"], h["epoch"]) for h in history]
  assert float(rows[-1]["test_rmse"]) == pytest.approx(
      history[-1]["metrics"]["test_rmse"])
  again = run_script("train.py", *TINY, f"--output_dir={out}")
  assert_clear_failure(again, "holds a finished run: --resume continues it")
  replaced = run_script("train.py", *TINY, f"--output_dir={out}",
                        "--overwrite")
  assert replaced.returncode == 0, replaced.stderr[-2000:]


@pytest.mark.parametrize("script", ["table1.py", "figure2.py"])
def test_sweeps_with_no_data_found_say_so(tmp_path, script):
  """Every dataset skipped for missing files: a clear exit, not an empty
  result (table1) or a traceback from the plot (figure2)."""
  proc = run_script(script, "--datasets=ml-1m",
                    f"--data_root={tmp_path / 'none'}",
                    f"--output_dir={tmp_path / 'out'}")
  assert_clear_failure(proc, "none of --datasets=ml-1m was found")
  assert "ratings.dat not found" in proc.stdout + proc.stderr


def test_sweeps_refuse_a_file_with_a_pointer_to_train(tmp_path):
  proc = run_script("table1.py", "--datasets=file", f"--output_dir={tmp_path}")
  assert_clear_failure(proc, "experiments/train.py --dataset=file")


def test_training_on_every_rating_selects_on_validation_and_recommends(
    tmp_path):
  """--test_fraction=0: no test set; the run trains to the end, its test
  metrics are null, the epoch is selected on validation, and recommend.py
  uses that epoch."""
  rng = np.random.default_rng(0)
  path = tmp_path / "all.csv"
  path.write_text("user,item,rating\n" + "".join(
      f"u{u},i{i},{rng.integers(1, 6)}\n" for u in range(30)
      for i in range(20) if rng.random() < 0.4))
  out = tmp_path / "run"
  run = run_script("train.py", "--dataset=file", f"--train_file={path}",
                   "--test_fraction=0", "--validation_fraction=0.2",
                   *TINY[4:], f"--output_dir={out}")
  assert run.returncode == 0, run.stderr[-2000:]
  assert "no test ratings (--test_fraction=0)" in run.stdout
  metrics = json.load(open(out / "metrics.json"))
  assert metrics["data"]["test_ratings"] == 0
  assert metrics["final"]["rmse"] is None
  assert metrics["selected"]["valid_rmse"] > 0
  assert metrics["complete"]
  rec = run_script("recommend.py", f"--checkpoint_dir={out}", "--user=u3",
                   "--k=3")
  assert rec.returncode == 0, rec.stderr[-2000:]
  epoch = f"{metrics['selected']['phase']} epoch {metrics['selected']['epoch']}"
  assert f"(model after {epoch})" in rec.stdout
