"""train.py, benchmark.py, the sweeps and tune.py over several processes
(jax.distributed, gloo on the CPU) equal one process; a killed process
stops the other within the timeout, and the pair resumes from the last
checkpoint.

Two processes with 2 CPU devices each (4 global devices) against one
device in this process; 23 items, which 4 does not divide.
The sharded losses and an L-BFGS epoch equal one device's for each
representation in tests/test_sharding.py. Processes of their own: JAX fixes its devices, and joins
``jax.distributed``, once per process. All of them share the test run's
compilation cache (conftest), so a program compiled by one test's
processes serves the next (the killed pair's resumption runs the programs
its first start compiled).
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import XLA_FLAGS
from scripts import run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "experiments", "train.py")
BENCHMARK = os.path.join(ROOT, "experiments", "benchmark.py")
TABLE1 = os.path.join(ROOT, "experiments", "table1.py")
TUNE = os.path.join(ROOT, "experiments", "tune.py")
TINY = ["--dataset=synthetic", "--synthetic_items=23", "--synthetic_users=17",
        "--synthetic_density=0.35", "--hidden=6", "--n_dim=2",
        "--pretrain_maxiter=2", "--finetune_maxiter=2", "--devices=4"]
TIMEOUT = 10  # --distributed_timeout: heartbeats missed before stopping


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(args, devices, process_id=None, port=None, script=TRAIN):
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices),
         "PYTHONUNBUFFERED": "1", "XLA_FLAGS": XLA_FLAGS}
  extra = [] if process_id is None else [
      f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
      f"--process_id={process_id}", f"--distributed_timeout={TIMEOUT}"]
  return subprocess.Popen([sys.executable, script, *args, *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=ROOT)


def pair(args, script=TRAIN):
  """Two processes of ``script`` with ``args``; both must succeed. Their
  standard outputs."""
  port = free_port()
  procs = [start(args, 2, i, port, script) for i in (0, 1)]
  outs = []
  for proc in procs:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    outs.append(out)
  return outs


def one_device(args):
  proc = run_script("train.py", *[a for a in args if a != "--devices=4"],
                    "--devices=1")
  assert proc.returncode == 0, proc.stderr[-3000:]


def metrics(folder):
  return json.load(open(os.path.join(folder, "metrics.json")))


# Sparse: the killed pair below, resumed, against one device.
@pytest.mark.parametrize("representation", ["dense", "blocked"])
def test_two_processes_equal_one(tmp_path, representation):
  args = [*TINY, "--pretrain_epochs=2", "--finetune_epochs=2",
          f"--representation={representation}", "--block_size=4"]
  pair([*args, f"--output_dir={tmp_path / 'two'}"])
  # The same run on one device (in this process): the items split over 4
  # devices of 2 processes give its metrics (test_sharding: the sharded
  # losses equal one device's for each representation).
  one_device([*args, f"--output_dir={tmp_path / 'one'}"])
  two, one = (metrics(tmp_path / name) for name in ("two", "one"))
  assert (two["devices"], one["devices"]) == (4, 1)
  for block in ("final", "best"):
    assert abs(two[block]["rmse"] - one[block]["rmse"]) < 1e-4, block
  # Process 0 wrote the results, once (history.png with matplotlib).
  assert set(os.listdir(tmp_path / "two")) - {"history.png"} == {
      "checkpoint", "history.csv", "metrics.json"}


def test_a_killed_process_stops_the_other_and_the_pair_resumes(tmp_path):
  args = [*TINY, "--pretrain_epochs=8", "--finetune_epochs=2",
          "--representation=sparse", f"--output_dir={tmp_path / 'run'}"]
  port = free_port()
  procs = [start(args, 2, i, port) for i in (0, 1)]
  for line in procs[0].stdout:
    if line.startswith("pretrain epoch 3:"):
      break
  procs[1].kill()
  tic = time.perf_counter()
  _, err = procs[0].communicate(timeout=10 * TIMEOUT)
  waited = time.perf_counter() - tic
  assert procs[0].returncode != 0 and procs[1].wait() != 0
  assert waited < 6 * TIMEOUT, waited
  assert "stopped sending heartbeats" in err or "another task died" in err
  assert not os.path.exists(tmp_path / "run" / "metrics.json")
  pair([*args, "--resume"])
  # The uninterrupted run on one device: equal to one process with 4 and
  # to two processes (test_two_processes_equal_one).
  one_device([*TINY, "--pretrain_epochs=8", "--finetune_epochs=2",
              "--representation=sparse", f"--output_dir={tmp_path / 'one'}"])
  resumed, one = metrics(tmp_path / "run"), metrics(tmp_path / "one")
  assert resumed["complete"] and resumed["devices"] == 4
  assert len(resumed["history"]) == len(one["history"]) == 10
  for block in ("final", "best"):
    assert abs(resumed[block]["rmse"] - one[block]["rmse"]) < 1e-4, block
  # Process 0 wrote the results, once (history.png with matplotlib).
  assert set(os.listdir(tmp_path / "run")) - {"history.png"} == {
      "checkpoint", "history.csv", "metrics.json"}


def test_benchmark_two_processes_equal_one_device(tmp_path):
  args = [*TINY, "--pretrain_epochs=2", "--finetune_epochs=2",
          "--representations=sparse", "--noisolate"]
  outs = pair([*args, f"--output_json={tmp_path / 'two.json'}"], BENCHMARK)
  proc = run_script("benchmark.py", *[a for a in args if a != "--devices=4"],
                    "--devices=1", f"--output_json={tmp_path / 'one.json'}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  two, one = (json.load(open(tmp_path / f"{name}.json"))["rows"][0]
              for name in ("two", "one"))
  assert (two["devices"], one["devices"]) == (4, 1)
  for key in ("best_rmse", "final_rmse"):
    assert abs(two[key] - one[key]) < 1e-4, key
  assert two["evaluations"] == one["evaluations"]
  # Process 0 wrote the table, process 1 did not.
  assert "wrote" in outs[0] and "wrote" not in outs[1]


def test_benchmark_refuses_isolated_rows_over_several_processes(tmp_path):
  proc = run_script("benchmark.py", *TINY, "--num_processes=2",
                    "--process_id=0", "--coordinator_address=127.0.0.1:1",
                    f"--output_json={tmp_path / 'b.json'}")
  assert proc.returncode != 0 and "--noisolate" in proc.stderr
  assert not os.path.exists(tmp_path / "b.json")


def test_sweep_and_tune_over_two_processes_equal_one_device(tmp_path):
  # 3 seeds and 3 configurations on 4 devices: the last one is repeated to
  # fill them (sharding.seeds_on_devices), and dropped from the results.
  data = [a for a in TINY if a != "--dataset=synthetic"]
  table = [*data, "--datasets=synthetic", "--models=glocal-k", "--seeds=3",
           "--protocols=paper", "--pretrain_epochs=1", "--finetune_epochs=1"]
  tune = [*TINY, "--search=lambda_2=1,10,100", "--pretrain_epochs=1",
          "--finetune_epochs=1"]
  outs = pair([*table, f"--output_dir={tmp_path / 'two'}"], TABLE1)
  tuned = pair([*tune, f"--output_dir={tmp_path / 'tune_two'}"], TUNE)
  for script, args, name in (("table1.py", table, "one"),
                             ("tune.py", tune, "tune_one")):
    proc = run_script(script, *[a for a in args if a != "--devices=4"],
                      "--devices=1", f"--output_dir={tmp_path / name}")
    assert proc.returncode == 0, proc.stderr[-3000:]
  two, one = (json.load(open(tmp_path / name / "table1.json"))["rows"]
              for name in ("two", "one"))
  assert [r["protocol"] for r in two] == [r["protocol"] for r in one]
  for a, b in zip(two, one):
    assert (a["seed_batching"], b["seed_batching"]) == ("devices(4)", "map")
    np.testing.assert_allclose(a["per_seed_rmse"], b["per_seed_rmse"],
                               atol=1e-4)
  two, one = (json.load(open(tmp_path / name / "tune.json"))
              for name in ("tune_two", "tune_one"))
  np.testing.assert_allclose(
      [c["valid_rmse"] for c in two["configurations"]],
      [c["valid_rmse"] for c in one["configurations"]], atol=1e-4)
  assert two["chosen"]["index"] == one["chosen"]["index"]
  assert abs(two["chosen"]["test"]["rmse"] - one["chosen"]["test"]["rmse"]
             ) < 1e-4
  # Process 0 wrote the results and logged, process 1 neither.
  for zero, one in (outs, tuned):
    assert "wrote" in zero and "RMSE" in zero
    assert "wrote" not in one and "RMSE" not in one
