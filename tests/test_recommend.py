"""experiments/recommend.py on a checkpoint of a user's own file: the items
rated in any split are not recommended, train.py's output folder works as
the checkpoint folder, and an unknown string id is a clear error."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import glocal_jax as gj

from conftest import shared_data_dir
from scripts import run_script as script

ROOT = os.path.join(os.path.dirname(__file__), "..")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """train.py on a user's CSV files with string ids: (folder, train lines,
  test lines)."""
  tmp_path = tmp_path_factory.mktemp("own_file")
  rng = np.random.default_rng(0)
  train, test = ["user,item,rating"], ["user,item,rating"]
  for u in range(12):
    items = rng.permutation(20)[:10]
    train += [f"u_{u},i_{i},{rng.integers(1, 6)}" for i in items[:8]]
    test += [f"u_{u},i_{i},{rng.integers(1, 6)}" for i in items[8:]]
  test.append("u_new,i_3,4")  # a user with no training rating: a fallback
  (tmp_path / "train.csv").write_text("\n".join(train) + "\n")
  (tmp_path / "test.csv").write_text("\n".join(test) + "\n")
  out = tmp_path / "run"
  run = script("train.py", "--dataset=file",
               f"--train_file={tmp_path / 'train.csv'}",
               f"--test_file={tmp_path / 'test.csv'}", "--hidden=8",
               "--n_dim=2", "--pretrain_epochs=1", "--finetune_epochs=1",
               "--pretrain_maxiter=2", "--finetune_maxiter=2",
               "--validation_fraction=0.1", f"--output_dir={out}",
               f"--compilation_cache={tmp_path / 'cc'}")
  assert run.returncode == 0, run.stderr
  return out, train, test


def test_recommend_skips_every_rated_item_and_names_unknown_users(trained):
  out, train, test = trained
  rec = script("recommend.py", f"--checkpoint_dir={out}", "--user=u_3",
               "--k=20")
  assert rec.returncode == 0, rec.stderr
  shown = [line.split("\t")[1] for line in rec.stdout.splitlines()
           if line[:1].isdigit()]
  rated = {line.split(",")[1] for line in train[1:] + test[1:]
           if line.startswith("u_3,")}
  assert len(rated) == 10 and len(shown) == 10  # the 10 never rated
  assert not {s.split()[1] for s in shown} & rated
  bad = script("recommend.py", f"--checkpoint_dir={out}", "--user=u_99")
  assert bad.returncode == 2
  assert "unknown user id 'u_99'" in bad.stderr and "u_0 .. u_new" in bad.stderr
  assert "Traceback" not in bad.stderr
  missing = script("recommend.py", f"--checkpoint_dir={out / 'nothing'}",
                   "--user=u_3")
  assert missing.returncode == 2 and "does not exist" in missing.stderr
  titles = script("recommend.py", f"--checkpoint_dir={out}", "--user=u_3",
                  f"--items_file={out / 'no_titles.csv'}")
  assert titles.returncode == 2 and titles.stderr.startswith(
      f"error: --items_file={out / 'no_titles.csv'}: cannot read it"), (
          titles.stderr)
  assert "Train with" not in titles.stderr


def test_load_model_in_a_fresh_process_reproduces_the_runs_test_rmse(
    trained):
  """glocal_jax.load_model(...).predict on the user's own test file, string
  ids, in a new process: the RMSE that metrics.json reports for the last
  epoch (the cold user's rating by the fallback included) and, by default,
  for the epoch selected on validation."""
  out, _, test = trained
  code = textwrap.dedent(f"""
      import csv, json, numpy as np
      import glocal_jax as gj
      rows = list(csv.reader(open({str(out.parent / "test.csv")!r})))[1:]
      users, items, values = zip(*rows)
      metrics = json.load(open({str(out / "metrics.json")!r}))
      got = []
      for epoch, block in (("last", "final"), ("selected", "selected")):
        model = gj.load_model({str(out / "checkpoint")!r}, epoch=epoch)
        pred = model.predict(users=users, items=items)
        rmse = float(np.sqrt(np.mean((pred - np.array(values, float)) ** 2)))
        got.append([rmse, metrics[block]["rmse"], len(pred), model.phase,
                    model.epoch])
      print(json.dumps(got))
      """)
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=600, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr
  last, selected = json.loads(proc.stdout.splitlines()[-1])
  metrics = json.load(open(out / "metrics.json"))
  assert last[2] == len(test) - 1 and last[3:] == ["finetune", 1]
  assert abs(last[0] - last[1]) < 1e-4, last
  assert selected[3:] == [metrics["selected"]["phase"],
                          metrics["selected"]["epoch"]]
  assert abs(selected[0] - selected[1]) < 1e-4, selected


def test_recommend_names_ml_100k_titles_and_skips_every_rated_item(tmp_path):
  data_dir = shared_data_dir("ml-100k")
  out = tmp_path / "run"
  run = script("train.py", "--dataset=ml-100k", f"--data_dir={data_dir}",
               "--hidden=8", "--n_dim=2", "--pretrain_epochs=1",
               "--finetune_epochs=1", "--pretrain_maxiter=2",
               "--finetune_maxiter=2", f"--output_dir={out}",
               f"--compilation_cache={tmp_path / 'cc'}")
  assert run.returncode == 0, run.stderr
  rec = script("recommend.py", f"--checkpoint_dir={out}", "--user=42",
               "--k=10")
  assert rec.returncode == 0, rec.stderr
  shown = [line.split("\t") for line in rec.stdout.splitlines()
           if line[:1].isdigit()]
  assert len(shown) == 10
  titles = {}
  for line in open(os.path.join(data_dir, "u.item"), encoding="latin-1"):
    fields = line.split("|")
    titles[fields[0]] = fields[1]
  rated = set()
  for name in ("u1.base", "u1.test"):
    for line in open(os.path.join(data_dir, name)):
      user, item = line.split("\t")[:2]
      if user == "42":
        rated.add(item)
  items = [fields[1].split()[1] for fields in shown]
  assert not set(items) & rated
  assert [fields[3] for fields in shown] == [titles[i] for i in items]
  # Two iterations a phase learn less than a mean: the run's warnings, read
  # back from the checkpoint, come first.
  found = json.load(open(out / "metrics.json"))["warnings"]
  assert any("no better than the" in w for w in found)
  assert gj.load_model(str(out)).warnings == found
  assert rec.stdout.splitlines()[:len(found)] == [
      f"warning: {w}" for w in found]


def test_trained_model_predicts_unknown_ids_by_the_means_or_refuses(trained):
  out, _, _ = trained
  model = gj.load_model(str(out))  # OUTPUT_DIR works too
  train = model.train.to_host()
  global_mean = train.values.mean()
  item = model.item_index(["i_3"])[0]
  item_mean = train.values[train.items == item].mean()
  got = model.predict(["nobody", "nobody"], ["i_3", "no item"],
                      unknown="fallback")
  np.testing.assert_allclose(got, [item_mean, global_mean], rtol=1e-6)
  # By default an id the data does not have (a typo, a space too many) is
  # an error that names it.
  with pytest.raises(gj.trained.UnknownIdError, match="unknown user id "
                     "'nobody'"):
    model.predict(["nobody"], ["i_3"])
  with pytest.raises(gj.trained.UnknownIdError, match="unknown item id "
                     "'i_3 '"):
    model.predict(users="u_1", items="i_3 ")
  # One user with several items, keywords; one of each gives a float.
  both = model.predict(users="u_1", items=["i_3", "i_4"])
  assert both.shape == (2,) and model.predict("u_1", "i_4") == both[1]
  with pytest.raises(ValueError, match="give one of each"):
    model.predict(["u_1"], [])


def test_ctrl_c_stops_train_with_a_message_and_resumes(tmp_path):
  out = tmp_path / "run"
  args = [sys.executable, os.path.join(ROOT, "experiments", "train.py"),
          "--dataset=synthetic", "--synthetic_items=30",
          "--synthetic_users=20", "--synthetic_density=0.4", "--hidden=8",
          "--n_dim=2", "--pretrain_epochs=400", "--finetune_epochs=1",
          "--pretrain_maxiter=2", "--finetune_maxiter=2",
          f"--compilation_cache={tmp_path / 'cc'}", f"--output_dir={out}"]
  # Ctrl-C as a terminal sends it. A pytest-xdist worker ignores SIGINT,
  # which a child would inherit (Python then raises no KeyboardInterrupt);
  # a handled signal is reset to the default in the child at exec, so the
  # worker handles it while it starts the child.
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
  finally:
    signal.signal(signal.SIGINT, previous)
  for line in proc.stdout:
    if line.startswith("pretrain epoch 2:"):
      proc.send_signal(signal.SIGINT)
      break
  else:
    pytest.fail(f"no 'pretrain epoch 2:' line: {proc.communicate()[1][-2000:]}")
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, err
  assert "Traceback" not in err
  assert f"{out / 'checkpoint'}: rerun with --resume to continue" in err
  # Resumed, then stopped by a scheduler's SIGTERM, as by Ctrl-C: the same
  # message, the lock released.
  again = subprocess.Popen(args + ["--resume"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
  seen = []
  for line in again.stdout:
    seen.append(line)
    if line.startswith("pretrain epoch "):
      again.send_signal(signal.SIGTERM)
      break
  _, err = again.communicate(timeout=300)
  assert any(s.startswith("Resuming after pretrain epoch") for s in seen)
  assert again.returncode == 143, err
  assert err.startswith("terminated (SIGTERM); the checkpoint of the last "
                        "finished epoch is in"), err
  assert not (out / ".lock").exists()
  # Stopped while it compiles: no epoch, no checkpoint, and it says so.
  fresh = [a for a in args if not a.startswith("--output_dir")] + [
      f"--output_dir={tmp_path / 'fresh'}"]
  early = subprocess.Popen(fresh, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
  for line in early.stdout:
    if line.startswith("compiling each phase"):
      early.send_signal(signal.SIGTERM)
      break
  _, err = early.communicate(timeout=300)
  assert early.returncode == 143, err
  assert "no epoch had finished, so there is no checkpoint" in err, err
