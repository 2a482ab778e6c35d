"""L-BFGS-B drivers and the training schedule on small problems."""

import concurrent.futures
import functools
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import glocal_jax as gj
from glocal_jax import data as gdata
from glocal_jax import epochs
from glocal_jax import optim
from glocal_jax import sharding
from glocal_jax import training

SMALL = dict(hidden=(16, 16), n_dim=3, pretrain_epochs=4, finetune_epochs=3,
             pretrain_maxiter=5, finetune_maxiter=5)


def quadratic(params, scale):
  return 0.5 * jnp.sum(scale * (params["x"] - 1.0) ** 2) + jnp.sum(
      params["y"] ** 2)


@pytest.mark.parametrize("driver", optim.DRIVERS)
def test_drivers_minimise_a_quadratic(driver):
  scale = jnp.linspace(1.0, 20.0, 30)
  params = {"x": jnp.zeros(30), "y": jnp.ones(4)}
  epoch = optim.lbfgsb_epoch(driver, quadratic, maxiter=60)
  out, stats = epoch(params, scale)
  np.testing.assert_allclose(out["x"], 1.0, atol=1e-3)
  np.testing.assert_allclose(out["y"], 0.0, atol=1e-3)
  assert float(stats.loss) < 1e-5
  assert int(stats.evaluations) >= int(stats.iterations) >= 1


@pytest.mark.parametrize("make_epoch", [optim.jaxopt_lbfgsb_epoch,
                                        optim.optax_lbfgs_epoch])
def test_epoch_vmap_equals_loop(make_epoch):
  scales = jnp.stack([jnp.linspace(1.0, s, 10) for s in (5.0, 10.0, 30.0)])
  params = {"x": jnp.zeros((3, 10)), "y": jnp.ones((3, 2))}
  epoch = make_epoch(quadratic, maxiter=4)
  batched, stats = jax.jit(jax.vmap(epoch))(params, scales)
  for i in range(3):
    single, single_stats = jax.jit(epoch)(
        jax.tree.map(lambda x: x[i], params), scales[i])
    np.testing.assert_allclose(batched["x"][i], single["x"], rtol=1e-5,
                               atol=1e-6)
    assert int(stats.evaluations[i]) == int(single_stats.evaluations)


@pytest.mark.parametrize("batching", ["none", "vmap", "map"])
def test_known_start_saves_the_initial_evaluation(batching):
  """An epoch started from the previous epoch's end (EpochStart.known)
  returns the parameters that a fresh evaluation there (with the same step
  scale, as a resumed run has) returns, one evaluation cheaper, and its
  stats carry the gradient at its end."""
  scale = jnp.linspace(1.0, 20.0, 30)
  epoch = optim.optax_lbfgs_epoch(quadratic, maxiter=3)
  one = lambda p, s, start: epoch(p, s, start=start)
  grad = jax.grad(quadratic)
  params = {"x": jnp.zeros(30), "y": jnp.ones(4)}
  seeds = ()
  if batching != "none":
    params = jax.tree.map(lambda x: jnp.stack([x, 2 * x + 0.5]), params)
    seeds = (2,)
    grad = jax.vmap(grad, in_axes=(0, None))
  run = {"none": jax.jit(one),
         "vmap": jax.jit(jax.vmap(one, in_axes=(0, None, optim.EpochStart(
             0, 0, None, 0)))),
         "map": jax.jit(functools.partial(sharding.map_seeds, one))}[batching]
  fresh = lambda p, step_scale=None: optim.EpochStart.unknown(
      jnp.zeros(seeds), p, step_scale)
  first, stats = run(params, scale, fresh(params))
  warm, warm_stats = run(first, scale, optim.EpochStart.known(stats))
  cold, cold_stats = run(first, scale, fresh(first, stats.step_scale))
  np.testing.assert_allclose(warm["x"], cold["x"], rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(warm_stats.evaluations) + 1,
                                cold_stats.evaluations)
  np.testing.assert_allclose(stats.grad["x"], grad(first, scale)["x"],
                             rtol=1e-5, atol=1e-6)


def rosenbrock(params):
  x = params["x"]
  return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("driver", ["optax", "jaxopt"])
def test_evaluation_counts_are_the_loss_calls_made(driver):
  """Counted on the host by a callback in the loss. jaxopt's line search
  calls the loss once more per iteration for an unused aux; the callback,
  an effect, keeps that call alive (without one, XLA removes it as dead
  code: docs/optimizer.md), so it shows here as one call per iteration
  that the driver does not count."""
  calls = []

  def loss(params):
    jax.debug.callback(lambda: calls.append(1))
    return rosenbrock(params)

  make = {"optax": optim.optax_lbfgs_epoch,
          "jaxopt": optim.jaxopt_lbfgsb_epoch}[driver]
  params = {"x": jnp.asarray([-1.2, 1.0, 0.5, -0.3])}
  _, stats = jax.jit(make(loss, maxiter=8))(params)
  jax.effects_barrier()
  assert int(stats.iterations) == 8
  phantom = int(stats.iterations) if driver == "jaxopt" else 0
  assert int(stats.evaluations) + phantom == len(calls)


def test_first_step_scaling_saves_evaluations():
  """A fresh run's first step along -g/||g|| needs fewer evaluations than
  jaxopt's default step of length ||g|| on a badly scaled problem."""
  scale = jnp.full(50, 1e3)
  params = {"x": jnp.zeros(50), "y": jnp.zeros(1)}
  evals = {}
  for scaled in (True, False):
    epoch = jax.jit(optim.jaxopt_lbfgsb_epoch(
        quadratic, maxiter=1, scale_first_step=scaled))
    evals[scaled] = int(epoch(params, scale)[1].evaluations)
  assert evals[True] < evals[False]


def isotropic(params, curvature):
  return 0.5 * curvature * jnp.sum((params["x"] - 10.0) ** 2)


@pytest.mark.parametrize("make_epoch", [optim.jaxopt_lbfgsb_epoch,
                                        optim.optax_lbfgs_epoch])
def test_step_scale_is_the_last_curvature_scale(make_epoch):
  """On 0.5 c ||x - 10||^2 every step has s'y / y'y = 1 / c."""
  params = {"x": jnp.zeros(30)}
  _, stats = jax.jit(make_epoch(isotropic, maxiter=2))(params, 4.0)
  np.testing.assert_allclose(float(stats.step_scale), 0.25, rtol=1e-5)


@pytest.mark.parametrize("make_epoch", [optim.jaxopt_lbfgsb_epoch,
                                        optim.optax_lbfgs_epoch])
def test_carried_step_scale_sets_the_first_step(make_epoch):
  """With the scale 1 / c carried in, the first step -g / c lands on the
  minimum of 0.5 c ||x - 10||^2 and is accepted at once; from a
  unit-length first step, optax's line search needs more evaluations and
  still falls short (jaxopt's, which starts at its maximal step 1, stops
  short at once)."""
  params = {"x": jnp.zeros(30)}
  value, grad = jax.value_and_grad(isotropic)(params, 4.0)
  start = optim.EpochStart(value, grad, np.False_, np.float32(0.25))
  out, evals = {}, {}
  for first_step in optim.FIRST_STEPS:
    epoch = jax.jit(make_epoch(isotropic, maxiter=1, first_step=first_step))
    out[first_step], stats = epoch(params, 4.0, start=start)
    evals[first_step] = int(stats.evaluations)
  np.testing.assert_allclose(out["carried"]["x"], 10.0, rtol=1e-6)
  assert evals["carried"] == 1 + (make_epoch is optim.jaxopt_lbfgsb_epoch)
  assert evals["carried"] <= evals["unit"]
  assert float(jnp.max(jnp.abs(out["unit"]["x"] - 10.0))) > 1e-3


def test_scipy_driver_needs_the_unit_first_step():
  with pytest.raises(ValueError, match="first_step='unit'"):
    gj.GLocalKConfig(optimizer="scipy")
  gj.GLocalKConfig(optimizer="scipy", first_step="unit")


def test_pretraining_and_finetuning_lower_loss_and_rmse():
  data = gdata.synthetic(60, 40, density=0.4, rank=3, seed=0)
  config = gj.GLocalKConfig(**SMALL)
  key = jax.random.PRNGKey(0)
  params0 = training.initial_params(config, key, data.shape)
  prepared = gj.prepare(config, data.train)
  train_rmse = lambda p, phase: float(gj.rmse(gj.predict(
      config, p, prepared, phase, users=data.train.users,
      items=data.train.items), data.train))
  rmse0 = train_rmse(params0, "pretrain")
  dense = data.train.to_dense()
  loss0 = float(gj.pretrain_loss(params0["autoencoder"], dense, dense > 0,
                                 config.lambda_2, config.lambda_s))
  result = gj.train(config, data.train, key)
  pre = [r for r in result.history if r.phase == "pretrain"]
  fine = [r for r in result.history if r.phase == "finetune"]
  assert len(pre) == 4 and len(fine) == 3
  assert pre[-1].loss < pre[0].loss < loss0
  assert fine[-1].loss < fine[0].loss
  assert train_rmse(result.params, "finetune") < rmse0 - 0.2


def test_train_resumes_from_any_epoch_exactly():
  data = gdata.synthetic(40, 30, density=0.4, rank=3, seed=1)
  config = gj.GLocalKConfig(**{**SMALL, "pretrain_epochs": 2,
                               "finetune_epochs": 2})
  key = jax.random.PRNGKey(3)
  full = gj.train(config, data.train, key)
  fns = gj.make_epoch_fns(config)
  part = gj.train(config.replace(finetune_epochs=1), data.train, key,
                  epoch_fns=fns)
  # The first step of finetune epoch 2 takes epoch 1's curvature scale.
  rest = gj.train(config, data.train, params=part.params,
                  start=("finetune", 1), epoch_fns=fns,
                  step_scale=part.history[-1].step_scale)
  assert [r.epoch for r in rest.history] == [2]
  for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(rest.params)):
    np.testing.assert_array_equal(a, b)


def test_non_finite_loss_stops_with_phase_and_epoch():
  data = gdata.synthetic(20, 10, density=0.5, seed=2)
  config = gj.GLocalKConfig(**{**SMALL, "pretrain_epochs": 1})
  params = training.initial_params(config, jax.random.PRNGKey(0), data.shape)
  params["autoencoder"][0]["w"] = params["autoencoder"][0]["w"].at[0, 0].set(
      jnp.nan)
  with pytest.raises(gj.NonFiniteError, match="pretrain epoch 1"):
    gj.train(config, data.train, params=params)


def test_later_phases_compile_ahead_once_and_train_the_same():
  """train lowers the fine-tuning epoch once the first pre-training epoch
  is compiled, before it runs (the fine-tuning epoch compiles meanwhile),
  lowers each phase once, times only the waits, and trains as epochs
  compiled on first call do."""
  data = gdata.synthetic(20, 10, density=0.5, seed=2)
  config = gj.GLocalKConfig(**{**SMALL, "pretrain_epochs": 2,
                               "finetune_epochs": 2, "optimizer": "optax"})
  log = []

  class Logged:
    """A jitted epoch that logs its lowering."""

    def __init__(self, phase):
      base = optim.lbfgsb_epoch("optax", getattr(
          epochs, f"{phase}_loss_fn")(config), 5, config.history_size)
      self.phase = phase
      self.jitted = jax.jit(lambda p, d, s: base(p, d, start=s))

    def lower(self, *args):
      log.append(f"lower {self.phase}")
      return self.jitted.lower(*args)

  fns = {p: epochs.CompiledEpoch(Logged(p)) for p in training.PHASES}
  callback = lambda record, _: log.append(f"{record.phase} {record.epoch}")
  key = jax.random.PRNGKey(0)
  result = gj.train(config, data.train, key, epoch_fns=fns, callback=callback)
  assert log == ["lower pretrain", "lower finetune", "pretrain 1",
                 "pretrain 2", "finetune 1", "finetune 2"]
  waits = [r.compile_seconds for r in result.history]
  assert waits[0] > 0 and waits[1] == waits[3] == 0
  plain = gj.train(config, data.train, key, epoch_fns={
      p: fn.jitted for p, fn in zip(training.PHASES, map(Logged,
                                                         training.PHASES))})
  for a, b in zip(jax.tree.leaves(result.params),
                  jax.tree.leaves(plain.params)):
    np.testing.assert_array_equal(a, b)
  # A call that stops before fine-tuning compiles none of it.
  log.clear()
  fns = {p: epochs.CompiledEpoch(Logged(p)) for p in training.PHASES}
  gj.train(config, data.train, key, epoch_fns=fns, max_epochs=2)
  assert log == ["lower pretrain"]


def test_train_needs_a_key_or_params():
  config = gj.GLocalKConfig(**SMALL)
  with pytest.raises(ValueError, match="PRNG key"):
    gj.train(config, gdata.synthetic(4, 3, density=0.5).train)


@pytest.mark.parametrize("field,value", [
    ("pretrain_epochs", -1), ("pretrain_maxiter", 0), ("finetune_maxiter", -2),
    ("hidden", (500, 0)), ("kernel_size", 4), ("kernel_size", 0),
    ("lambda_2", -1.0), ("lambda_s", float("nan")), ("dot_scale", 0.0),
    ("aggregation", "max"), ("optimizer", "adam"), ("conv_layers", 0)])
def test_config_rejects_out_of_range_values(field, value):
  with pytest.raises(ValueError, match=field):
    gj.GLocalKConfig(**{field: value})


def test_presets_follow_spec():
  assert gj.preset("ml-1m").pretrain_maxiter == 50
  assert gj.preset("douban").dot_scale == 2.0
  assert gj.preset("ml-100k", lambda_2=1.0).lambda_2 == 1.0
  with pytest.raises(ValueError, match="No preset"):
    gj.preset("netflix")


def test_epoch_memory_holds_only_the_pairs_an_epoch_makes():
  """An epoch of maxiter iterations with memory min(history, maxiter - 1)
  follows the same path as optax.lbfgs with the full memory, stepped by
  hand as optax documents it (value_and_grad_from_state)."""
  assert optim.epoch_memory_size(10, 5) == 4
  assert optim.epoch_memory_size(3, 5) == 3
  assert optim.epoch_memory_size(10, 1) == 1
  params = {"x": jnp.asarray([-1.2, 1.0, 0.5, -0.3, 0.8, -0.9])}
  maxiter = 7
  ours, stats = jax.jit(optim.optax_lbfgs_epoch(rosenbrock, maxiter))(params)
  solver = optax.lbfgs(
      memory_size=10, linesearch=optax.scale_by_zoom_linesearch(
          max_linesearch_steps=20, initial_guess_strategy="one"))
  state, reference = solver.init(params), params
  value_and_grad = optax.value_and_grad_from_state(rosenbrock)
  for _ in range(maxiter):
    value, grad = value_and_grad(reference, state=state)
    updates, state = solver.update(grad, state, reference, value=value,
                                   grad=grad, value_fn=rosenbrock)
    reference = optax.apply_updates(reference, updates)
  assert int(stats.iterations) == maxiter
  assert float(stats.loss) < float(rosenbrock(params)) / 10
  np.testing.assert_allclose(ours["x"], reference["x"], rtol=1e-5, atol=1e-6)


def test_a_compilation_cancelled_ahead_is_done_when_needed():
  """A train call that stops (a callback, max_epochs) before a later
  phase's compilation began cancels it; the same compiled epochs used again
  compile that phase when it is needed instead of failing."""
  fn = epochs.CompiledEpoch(jax.jit(lambda x: x + 1))
  busy = concurrent.futures.ThreadPoolExecutor(1)
  release = threading.Event()
  busy.submit(release.wait)  # the one worker is taken
  fn.compile_ahead(busy, jnp.zeros(3))
  busy.shutdown(wait=False, cancel_futures=True)
  release.set()
  assert fn.compile(jnp.zeros(3)) > 0
  np.testing.assert_array_equal(fn(jnp.zeros(3)), np.ones(3))
