"""experiments/recommend.py on a checkpoint of a user's own file: the items
rated in any split are not recommended, train.py's output folder works as
the checkpoint folder, and an unknown string id is a clear error."""

import os
import signal
import subprocess
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..")


def script(name, *args):
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "experiments", name), *args],
      capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_recommend_skips_every_rated_item_and_names_unknown_users(tmp_path):
  rng = np.random.default_rng(0)
  train, test = ["user,item,rating"], ["user,item,rating"]
  for u in range(12):
    items = rng.permutation(20)[:10]
    train += [f"u_{u},i_{i},{rng.integers(1, 6)}" for i in items[:8]]
    test += [f"u_{u},i_{i},{rng.integers(1, 6)}" for i in items[8:]]
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
  rec = script("recommend.py", f"--checkpoint_dir={out}", "--user=u_3",
               "--k=20")
  assert rec.returncode == 0, rec.stderr
  assert f"using the checkpoint in {out / 'checkpoint'}" in rec.stdout
  shown = [line.split("\t")[1] for line in rec.stdout.splitlines()
           if line[:1].isdigit()]
  rated = {line.split(",")[1] for line in train[1:] + test[1:]
           if line.startswith("u_3,")}
  assert len(rated) == 10 and len(shown) == 10  # the 10 never rated
  assert not {s.split()[1] for s in shown} & rated
  bad = script("recommend.py", f"--checkpoint_dir={out}", "--user=u_99")
  assert bad.returncode == 2
  assert "unknown user id u_99" in bad.stderr and "u_0 .. u_9" in bad.stderr
  assert "Traceback" not in bad.stderr


def test_ctrl_c_stops_train_with_a_message_and_resumes(tmp_path):
  out = tmp_path / "run"
  args = [sys.executable, os.path.join(ROOT, "experiments", "train.py"),
          "--dataset=synthetic", "--synthetic_items=30",
          "--synthetic_users=20", "--synthetic_density=0.4", "--hidden=8",
          "--n_dim=2", "--pretrain_epochs=400", "--finetune_epochs=1",
          "--pretrain_maxiter=2", "--finetune_maxiter=2",
          f"--compilation_cache={tmp_path / 'cc'}", f"--output_dir={out}"]
  proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT)
  for line in proc.stdout:
    if line.startswith("pretrain epoch 2:"):
      proc.send_signal(signal.SIGINT)
      break
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, err
  assert "Traceback" not in err
  assert f"{out / 'checkpoint'}: rerun with --resume to continue" in err
  again = subprocess.run(args + ["--resume", "--stop_after=1"],
                         capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
  assert again.returncode == 0, again.stderr
  assert "Resuming after pretrain epoch" in again.stdout
