"""Items over several devices equal one device.

Each test runs in a subprocess started with ``--xla_force_host_platform_
device_count`` (JAX fixes its devices when it starts). Seeds and tuning
configurations over devices (3 on 4 devices of two processes, so the last
is repeated to fill them) against one device, and train.py over two
processes against one with 4 devices: tests/test_distributed.py."""

import os
import subprocess
import sys
import textwrap

from conftest import XLA_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def with_devices(devices: int) -> dict:
  """This process's environment, with ``devices`` host devices for a
  child (the test run's XLA flags kept)."""
  return {**os.environ,
          "XLA_FLAGS": f"{XLA_FLAGS} "
          f"--xla_force_host_platform_device_count={devices}"}


def run(code: str, devices: int = 4, timeout: int = 900):
  proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                        capture_output=True, text=True,
                        env=with_devices(devices), cwd=ROOT, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


PROBLEM = """
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import glocal_jax as gj
from glocal_jax import representations as rep, ratings as rt, sharding
from glocal_jax.plan import Plan
rng = np.random.default_rng(0)
m, n = 23, 17      # 23 items: no device count divides them
R = (rng.integers(1, 6, (m, n)) * (rng.random((m, n)) < 0.35)).astype(float)
R[-1] = 3          # the last item rated by everyone: the bottom border
R[11:13] = 2       # dense rows across the middle, inside conv windows
ratings = rt.from_dense(R)

def problem(t, layers):
  params = gj.init_params(jax.random.PRNGKey(1), m, n, hidden=(6, 4),
                          n_dim=3, kernel_size=t, conv_layers=layers,
                          dtype=jnp.float64)
  for layer in params["autoencoder"]:
    for k in ("u", "v"):
      layer[k] = jnp.asarray(rng.normal(0, .3, layer[k].shape))
  return params

def f64(data):
  return jax.tree.map(lambda x: x.astype(jnp.float64)
                      if jnp.issubdtype(x.dtype, jnp.floating) else x, data)

def gap(a, b):
  return max(float(jnp.max(jnp.abs(x - y)))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
"""


def test_losses_gradients_and_predictions_equal_one_device():
  out = run(PROBLEM + """
from glocal_jax import kernels
items, users = np.divmod(np.arange(m * n), n)
fine = jax.jit(jax.value_and_grad(rep.finetune_loss), static_argnums=(5, 6, 7))
pre = jax.jit(jax.value_and_grad(rep.pretrain_loss))
predict = jax.jit(rep.predictions_at, static_argnums=(4, 6, 7, 8))
worst = 0.0
# Each method once on 4 shards of 6, 6, 6 and 5 items, each case a kind of
# its own: two 3x3 layers (halos of 2 rows, windows that cross every
# border) with a user's aggregation that sees every item's pooled
# prediction on every device (a softmax over all items), dense; the paper's
# weighted aggregation, blocked, with the paper's average pooling (added
# across devices) and with a user's pooling that reads every item's
# predictions (an item's maximum less the mean of all: the hidden codes
# gathered onto every device); three 5x5 layers (halo 6, wider
# than a shard) with mean aggregation, sparse. Each against the dense model
# on one device (which every method equals there: test_representations).
softmax = lambda pooled, bank, scale: scale * (jax.nn.softmax(pooled) @ bank)
average = kernels.item_average_pooling
top = lambda p: jnp.max(p, axis=1) - jnp.mean(p)
cases = [(3, 2, softmax, average, "dense", 4),
         (3, 2, "weighted", average, "blocked", 4),
         (3, 2, "weighted", top, "blocked", 4),
         (5, 3, "mean", average, "sparse", 4)]
reference = {}
for t, layers, aggregation, pooling, method, devices in cases:
  pieces = (aggregation, kernels.local_kernel, pooling)
  if (t, layers, aggregation, pooling) not in reference:
    params = problem(t, layers)
    one = f64(rep.build_on_device(
        ratings, Plan("dense", "dense", "dense", 3, 5), kernel_size=t,
        conv_layers=layers))
    reference[t, layers, aggregation, pooling] = params, (
        fine(params, one, 2., .5, 1.5, *pieces),
        pre(params["autoencoder"], one, 2., .5),
        predict(params, one, items, users, True, 1.5, *pieces))
  params, expected = reference[t, layers, aggregation, pooling]
  many = f64(sharding.build_on_mesh(
      ratings, Plan(method, method, method, 3, 5),
      sharding.device_mesh(devices), kernel_size=t, conv_layers=layers))
  worst = max([worst] + [gap(a, b) for a, b in zip(
      expected,
      (fine(params, many, 2., .5, 1.5, *pieces),
       pre(params["autoencoder"], many, 2., .5),
       predict(params, many, items, users, True, 1.5, *pieces)),
      strict=True)])
print(worst)
""")
  assert float(out.split()[-1]) < 1e-10


def test_one_lbfgs_epoch_equals_one_device():
  out = run(PROBLEM.replace('jax.config.update("jax_enable_x64", True)', "")
            + """
import jax.numpy as jnp
from glocal_jax import epochs, optim, training
config = gj.GLocalKConfig(hidden=(6, 4), n_dim=3, finetune_maxiter=4,
                          optimizer="optax")
params = training.initial_params(config, jax.random.PRNGKey(0), (m, n))
epoch = epochs.make_epoch_fns(config)["finetune"]
results = []
for devices in (1, 4):
  mesh = sharding.device_mesh(devices) if devices > 1 else None
  data = gj.prepare(config.replace(representation="blocked", block_size=4),
                    ratings, mesh=mesh)
  new, stats = epoch(params, data,
                     optim.EpochStart.unknown(jnp.zeros(()), params))
  results.append((new, float(stats.loss)))
print(max(gap(results[0][0], r[0]) for r in results[1:]),
      max(abs(results[0][1] - r[1]) / results[0][1] for r in results[1:]))
""")
  params_gap, loss_gap = (float(x) for x in out.split()[-2:])
  assert params_gap < 1e-4 and loss_gap < 1e-5
