"""Honest tuning (glocal_jax.tuning, experiments/tune.py): the grid, the
epoch cut, a search that cannot read the test set, and the config file
train.py takes back."""

import csv
import dataclasses
import json
import os

import numpy as np
import numpy_reference as ref
import pytest
from test_data import random_rows
from test_data import write_ml_1m

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax import runs
from glocal_jax import tuning

from scripts import run_script

ROOT = os.path.join(os.path.dirname(__file__), "..")
TINY = dict(hidden=(8, 8), pretrain_epochs=2, finetune_epochs=2,
            pretrain_maxiter=2, finetune_maxiter=2)


def test_grid_and_default_space():
  base = gj.preset("ml-100k")
  configs = tuning.grid(base, {"lambda_2": [1.0, 2.0], "dot_scale": [3.0]})
  assert [(c.lambda_2, c.dot_scale) for c in configs] == [(1.0, 3.0),
                                                          (2.0, 3.0)]
  assert configs[0].replace(lambda_2=base.lambda_2, dot_scale=1.0) == base
  space = tuning.default_space(base)
  assert space == {"lambda_2": [5.0, 10.0, 20.0, 40.0],
                   "lambda_s": [0.0015, 0.003, 0.006]}
  assert len(tuning.grid(base, space)) == 12
  assert [len(g) for g in tuning.groups(tuning.grid(base, space))] == [12]
  with pytest.raises(ValueError, match="'lamda_2' is not a hyper-parameter"):
    tuning.grid(base, {"lamda_2": [1.0]})
  with pytest.raises(ValueError, match="no values"):
    tuning.grid(base, {"lambda_2": []})
  # Hidden sizes: a tuple, or one layer's size alone; shapes split groups.
  shapes = tuning.grid(base, {"hidden": [(8, 8), 4]})
  assert [c.hidden for c in shapes] == [(8, 8), (4,)]
  assert [len(g) for g in tuning.groups(shapes)] == [1, 1]
  with pytest.raises(ValueError, match="hidden must be layer sizes"):
    gj.GLocalKConfig(hidden="wide")


def test_chosen_config_ends_at_the_chosen_epoch():
  base = gj.preset("ml-100k")
  assert tuning.chosen_config(base, "pretrain", 7) == base.replace(
      pretrain_epochs=7, finetune_epochs=0)
  assert tuning.chosen_config(base, "finetune", 4) == base.replace(
      finetune_epochs=4)
  assert len(gj.training.schedule(base.replace(finetune_epochs=4))) == 34


def test_search_never_reads_the_test_set():
  """Two data sets that differ only in their test ratings (one all
  garbage) give the same search, record for record; the chosen config
  then trains, with the test set present, to the chosen epoch's
  validation RMSE."""
  data = gdata.split_validation(gdata.synthetic(40, 30, density=0.3, seed=5),
                                0.2, seed=0)
  garbage = dataclasses.replace(data.test, values=np.full_like(
      data.test.values, 5.0))
  other = dataclasses.replace(data, test=garbage)
  configs = tuning.grid(gj.preset("ml-100k", **TINY),
                        {"lambda_2": [5.0, 40.0]})
  found = [tuning.search(configs, d, log=lambda _: None)
           for d in (data, other)]
  strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"}
                        for r in rows]
  assert strip(found[0]["configurations"]) == strip(
      found[1]["configurations"])
  assert found[0]["chosen"] == found[1]["chosen"]
  rows = found[0]["configurations"]
  best = int(np.argmin([r["valid_rmse"] for r in rows]))
  assert found[0]["chosen"]["index"] == best
  chosen = gj.GLocalKConfig(**found[0]["chosen"]["config"])
  run = runs.evaluated_run(chosen, data, 0, log=lambda _: None).to_dict()
  np.testing.assert_allclose(run["history"][-1]["metrics"]["valid_rmse"],
                             rows[best]["valid_rmse"], rtol=1e-5)
  with pytest.raises(ValueError, match="validation split"):
    tuning.search(configs, dataclasses.replace(data, valid=None))


def test_tune_script_writes_a_config_train_takes(tmp_path):
  out = tmp_path / "tune"
  flags = ["--dataset=synthetic", "--synthetic_items=40",
           "--synthetic_users=30", "--synthetic_density=0.3",
           "--hidden=8,8", "--pretrain_epochs=2", "--finetune_epochs=1",
           "--pretrain_maxiter=2", "--finetune_maxiter=2"]
  tune = run_script("tune.py", *flags,
                    "--search=lambda_2=5,40;orientation=users;hidden=(8,8)",
                    "--validation_fraction=0.2", f"--output_dir={out}")
  assert tune.returncode == 0, tune.stderr[-3000:]
  result = json.loads((out / "tune.json").read_text())
  assert len(result["configurations"]) == 2
  assert result["space"] == {"lambda_2": [5, 40], "orientation": ["users"],
                             "hidden": [[8, 8]]}
  assert result["chosen"]["config"]["orientation"] == "users"
  test = result["chosen"]["test"]
  assert set(test) == {"rmse", "mae", "ndcg", "ratings"}
  assert test["ratings"] == result["data"]["test_ratings"] > 0
  assert "command" in result["provenance"]
  saved = json.loads((out / "config.json").read_text())
  assert saved == result["chosen"]["config"]
  run = tmp_path / "run"
  train = run_script("train.py", *flags[:4], "--validation_fraction=0.2",
                     f"--config_json={out / 'config.json'}",
                     "--checkpoint_dir=none", f"--output_dir={run}")
  assert train.returncode == 0, train.stderr[-3000:]
  metrics = json.loads((run / "metrics.json").read_text())
  assert metrics["config"] == saved
  np.testing.assert_allclose(metrics["final"]["rmse"], test["rmse"],
                             rtol=1e-5)
  bad = run_script("train.py", *flags[:4],
                   f"--config_json={tmp_path / 'missing.json'}",
                   f"--output_dir={tmp_path / 'other'}")
  assert bad.returncode == 2 and "not a config file" in bad.stderr
  unbalanced = run_script("tune.py", *flags, "--search=hidden=(8,8",
                          f"--output_dir={tmp_path / 'bad'}")
  assert unbalanced.returncode == 2 and "Traceback" not in unbalanced.stderr
  assert "unbalanced parentheses" in unbalanced.stderr


def test_suite_runs_ml_1m_when_its_file_is_present(tmp_path):
  """ML-1M joins the suite when DATA_ROOT/ml-1m/ratings.dat exists (the
  user-mean row checked against NumPy on its seeded split); without it, the
  entry is skipped, and a suite with nothing to run fails with a message."""
  root = tmp_path / "data"
  write_ml_1m(str(root / "ml-1m"), random_rows(seed=4))
  args = ["--datasets=ml-1m", "--models=user-mean", "--protocols=paper",
          "--seeds=1"]
  proc = run_script("suite.py", *args, f"--data_root={root}",
                    f"--output_dir={tmp_path / 'out'}")
  assert proc.returncode == 0, proc.stderr
  (row,) = json.loads((tmp_path / "out" / "suite.json").read_text())["rows"]
  data = gdata.load_ml_1m(str(root / "ml-1m"))
  assert (row["dataset"], row["model"]) == ("ml-1m", "user-mean")
  assert row["rmse_mean"] == pytest.approx(ref.user_mean_rmse(
      np.asarray(data.train.to_dense()), np.asarray(data.test.to_dense())),
      rel=1e-5)
  absent = run_script("suite.py", *args, f"--data_root={tmp_path / 'none'}",
                      f"--output_dir={tmp_path / 'out2'}")
  assert absent.returncode != 0 and "Traceback" not in absent.stderr
  assert "skipping ml-1m" in absent.stdout + absent.stderr
  assert "none of --datasets=ml-1m was found" in absent.stderr


def test_suite_script_rows_folds_and_published_numbers(tmp_path):
  """ML-100K's five folds with the user-mean predictor (checked against
  NumPy per fold) and their mean over folds, a tiny GLocal-K row on
  YahooMusic's whole test set, the published numbers and a CSV the csv
  module reads back."""
  data_root = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
  if not os.path.isdir(os.path.join(data_root, "yahoo_music")):
    pytest.skip("../shared/data is absent")
  proc = run_script(
      "suite.py", "--datasets=ml-100k-folds,yahoo_music",
      "--models=user-mean,glocal-k", "--protocols=validation", "--seeds=1",
      f"--data_root={data_root}", "--hidden=8", "--pretrain_epochs=1",
      "--finetune_epochs=1", "--pretrain_maxiter=1", "--finetune_maxiter=1",
      f"--output_dir={tmp_path}")
  assert proc.returncode == 0, proc.stderr
  written = json.loads((tmp_path / "suite.json").read_text())
  rows = written["rows"]
  folds = [r for r in rows if r["entry"] == "ml-100k-folds"
           and r["model"] == "user-mean" and r["fold"] in "12345"]
  assert [r["fold"] for r in folds] == ["1", "2", "3", "4", "5"]
  for row in folds:
    split = gdata.split_validation(
        gdata.load_ml_100k(os.path.join(data_root, "ml-100k"),
                           fold=row["fold"]), 0.05, 0)
    assert row["rmse_mean"] == pytest.approx(ref.user_mean_rmse(
        np.asarray(split.train.to_dense()),
        np.asarray(split.test.to_dense())), rel=1e-5)
  mean_row = [r for r in rows if r.get("fold") == "1-5"
              and r["model"] == "user-mean"][0]
  assert mean_row["rmse_mean"] == pytest.approx(
      np.mean([r["rmse_mean"] for r in folds]))
  assert mean_row["rmse_std"] == pytest.approx(
      np.std([r["rmse_mean"] for r in folds]))
  assert len([r for r in rows if r.get("fold") == "1-5"]) == 2
  yahoo = [r for r in rows if r["dataset"] == "yahoo_music"]
  assert {r["model"] for r in yahoo} == {"user-mean", "glocal-k"}
  assert written["published"]["yahoo_music"][0][:2] == ["IGMC", 19.1]
  with open(tmp_path / "suite.csv", newline="") as f:
    table = list(csv.DictReader(f))
  assert len(table) == len(rows)
  assert table[0]["dataset"] == "ml-100k" and table[0]["fold"] == "1"


@pytest.mark.parametrize("dataset", sorted(gj.config.TUNED_PRESETS))
def test_tuned_presets_are_what_tune_chose(dataset):
  path = os.path.join(ROOT, gj.config.TUNED_PRESETS[dataset])
  with open(path) as f:
    written = json.load(f)
  assert written["dataset"] == dataset
  assert "tune.py" in written["provenance"]["command"]
  chosen = gj.GLocalKConfig(**written["chosen"]["config"])
  assert gj.preset(dataset) == chosen


def test_configurations_as_one_program_equal_separate_runs():
  """fit_configs over lambda_2, lambda_s and dot_scale (one compilation),
  with lax.map and with vmap over the configurations, gives each
  configuration the validation curve of its own fit."""
  data = gdata.split_validation(gdata.synthetic(40, 30, density=0.3, seed=5),
                                0.2, seed=0)
  base = gj.preset("ml-100k", **TINY)
  configs = [base.replace(lambda_2=5.0), base.replace(lambda_2=40.0),
             base.replace(lambda_s=0.05, dot_scale=2.0)]
  alone = [runs.evaluated_run(config, data, 3, log=lambda _: None).to_dict()
           for config in configs]
  curve = lambda r: [h["metrics"]["valid_rmse"] for h in r["history"]]
  for batching in ("map", "vmap"):
    together = runs.fit_configs(configs, data, 3, log=lambda _: None,
                                seed_batching=batching).to_dict()
    for config, run, own in zip(configs, together["runs"], alone):
      np.testing.assert_allclose(curve(run), curve(own), rtol=2e-4)
      assert run["selected"]["epoch"] == own["selected"]["epoch"]
      assert run["config"] == config.to_dict()
  # The curves differ between configurations: each trained with its own.
  assert curve(alone[0])[-1] != curve(alone[1])[-1]
  with pytest.raises(ValueError, match="also differ in \\['hidden'\\]"):
    runs.fit_configs([base, base.replace(hidden=(4, 4))], data, 0).to_dict()


def test_groups_share_everything_but_the_scalars():
  base = gj.preset("ml-100k", **TINY)
  configs = tuning.grid(base, {"lambda_2": [1.0, 2.0],
                               "orientation": ["items", "users"]})
  assert tuning.groups(configs) == [[0, 2], [1, 3]]
