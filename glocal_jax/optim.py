"""L-BFGS-B "epochs": one fresh solver run of ``maxiter`` iterations.

The reference schedule (docs/model.md, Optimisation) calls L-BFGS-B afresh each epoch,
discarding its history. Three drivers run such an epoch on any scalar loss
over a parameter pytree (the JAX ones can take the previous epoch's loss,
gradient and curvature scale, :class:`EpochStart`):

* :func:`optax_lbfgs_epoch` -- ``optax.lbfgs`` with its zoom (strong Wolfe)
  line search inside one compiled ``lax.while_loop``: a pure function,
  usable under ``jax.jit`` and ``jax.vmap``; the host syncs once per epoch.
  optax is the maintained successor of jaxopt's L-BFGS.
* :func:`jaxopt_lbfgsb_epoch` -- jaxopt's L-BFGS(-B), likewise compiled
  (jaxopt is archived; it is the optimiser the project card names).
* :func:`scipy_lbfgsb_epoch` -- ``scipy.optimize.minimize(method="L-BFGS-B")``
  on a jitted ``value_and_grad`` (what the authors' TF code used).

With no bounds, L-BFGS-B *is* L-BFGS: no variable is ever at a bound, so the
generalised Cauchy point and subspace minimisation reduce to the two-loop
quasi-Newton direction.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np
import optax

# A pytree of arrays (parameters, gradients), as optax's ``Params``.
PyTree = Any

DRIVERS: tuple[str, ...] = ("optax", "jaxopt", "jaxopt-lbfgsb", "scipy")
FIRST_STEPS: tuple[str, ...] = ("carried", "unit")


class EpochStats(NamedTuple):
  """What one L-BFGS-B epoch reports.

  Attributes:
    loss: loss at the returned parameters.
    evaluations: loss-and-gradient evaluations, the initial one included.
    iterations: L-BFGS-B iterations done.
    grad: gradient at the returned parameters (a pytree like them), to
      start the next epoch of the same loss with (:class:`EpochStart`).
    step_scale: ``s'y / y'y`` of the epoch's last step ``s`` and gradient
      change ``y``: the initial inverse-Hessian scale ``gamma_k`` that
      L-BFGS would use next (0 when the epoch made no step with
      positive curvature).
    aux: with ``has_aux=True``, the auxiliary output of the loss at the
      returned parameters (one more evaluation, forward only); else None.
  """
  loss: ArrayLike
  evaluations: ArrayLike
  iterations: ArrayLike
  grad: PyTree
  step_scale: ArrayLike
  aux: Any = None


class EpochStart(NamedTuple):
  """What an epoch can take from the previous epoch of the same loss.

  The schedule runs several fresh L-BFGS-B epochs of one loss back to back;
  each starts where the last ended, whose loss and gradient its line search
  has already computed. Passing them saves the epoch's initial evaluation.
  The previous epoch's last curvature scale sets the length of the first
  step (``first_step="carried"``); the curvature pairs themselves are not
  passed on, so each epoch's L-BFGS memory starts empty (docs/model.md).

  Attributes:
    value: loss at the parameters (scalar).
    grad: gradient at the parameters (a pytree like them).
    fresh: scalar bool: True ignores ``value`` and ``grad`` (placeholders of
      the right shapes) and evaluates them, so that the first epoch of a
      phase and the next ones run one compiled program. Keep it unbatched
      under ``vmap`` (``in_axes=None``): a batched flag turns the
      ``lax.cond`` on it into a select that always evaluates.
    step_scale: scalar (per seed, like ``value``): the previous epoch's
      :attr:`EpochStats.step_scale`; an epoch with ``first_step="carried"``
      takes ``-step_scale * g`` as its first direction when it is positive
      and finite, and a unit-length step otherwise (0: unknown).
  """
  value: ArrayLike
  grad: PyTree
  fresh: ArrayLike
  step_scale: ArrayLike

  @classmethod
  def unknown(cls, value: Any, params: Any,
              step_scale: Any = None) -> "EpochStart":
    """A fresh start with zero placeholders shaped like ``value`` and
    ``params`` (``value``: the loss's shape, e.g. ``()`` or ``(seeds,)``);
    ``step_scale`` (shaped like ``value``; default 0, unknown) e.g. from a
    checkpoint of a run in the middle of a phase."""
    # NumPy zeros: no small eager programs to compile before the first epoch.
    zeros = lambda x: np.zeros(np.shape(x), x.dtype if hasattr(x, "dtype")
                               else np.result_type(x))
    value = np.zeros(np.shape(value), np.float32)
    scale = value if step_scale is None else np.broadcast_to(
        np.asarray(step_scale, np.float32), value.shape)
    return cls(value, jax.tree.map(zeros, params), np.True_, scale)

  @classmethod
  def known(cls, stats: EpochStats) -> "EpochStart":
    """The start of the epoch after the one that returned ``stats``."""
    return cls(stats.loss, stats.grad, np.False_, stats.step_scale)


EpochFn = Callable[..., tuple[Any, EpochStats]]


def epoch_memory_size(history_size: int, maxiter: int) -> int:
  """The L-BFGS memory an epoch of ``maxiter`` iterations can fill:
  ``min(history_size, maxiter - 1)`` pairs (at least 1)."""
  return max(1, min(history_size, maxiter - 1))


def _check_first_step(first_step: str) -> None:
  if first_step not in FIRST_STEPS:
    raise ValueError(f"first_step must be one of {FIRST_STEPS}, got "
                     f"{first_step!r}.")


def _objective(loss_fn: Callable[..., Any], has_aux: bool):
  """``(value(params, args, kwargs), aux(params, args, kwargs))`` of a loss
  ``loss_fn(params, *args, **kwargs)`` that returns a scalar, or
  ``(scalar, aux)`` with ``has_aux``; ``aux`` is None without it."""
  call = lambda p, args, kwargs: loss_fn(p, *args, **kwargs)
  if not has_aux:
    return call, lambda p, args, kwargs: None
  return (lambda p, args, kwargs: call(p, args, kwargs)[0],
          lambda p, args, kwargs: call(p, args, kwargs)[1])


def _raveled(params: PyTree, start: Optional[EpochStart]
             ) -> tuple[jax.Array, Callable[[jax.Array], PyTree],
                        Optional[EpochStart]]:
  """``(vector, unravel, start)``: ``params`` raveled into one vector
  (``jax.flatten_util.ravel_pytree``), the inverse, and ``start`` with its
  gradient raveled alike. The JAX drivers run on this vector: their vector
  operations (dot products, norms, the two-loop recursion, the line
  search's updates) are then one operation each instead of one per leaf,
  which halves the compiled epoch (docs/optimizer.md)."""
  vector, unravel = ravel_pytree(params)
  if start is not None:
    start = start._replace(grad=ravel_pytree(start.grad)[0])
  return vector, unravel, start


def _box(bounds: tuple[Any, Any], params: PyTree
         ) -> tuple[jax.Array, jax.Array]:
  """``(lower, upper)`` raveled as :func:`_raveled` ravels ``params``.

  Each side is None (unbounded), one number for every parameter, or a
  pytree of ``params``' structure whose leaves are numbers, arrays
  broadcastable to the parameter's shape, or None (that leaf unbounded)."""
  if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
    raise ValueError(f"bounds must be a pair (lower, upper), got "
                     f"{type(bounds).__name__}.")

  def side(given, fill):
    full = lambda b, x: jnp.broadcast_to(
        jnp.asarray(fill if b is None else b, x.dtype), jnp.shape(x))
    if given is None or isinstance(given, (int, float)):
      return ravel_pytree(jax.tree.map(lambda x: full(given, x), params))[0]
    try:
      tree = jax.tree.map(full, given, params, is_leaf=lambda b: b is None)
    except ValueError as e:
      raise ValueError(f"a bound must have the parameters' structure "
                       f"({jax.tree.structure(params)}): {e}") from None
    return ravel_pytree(tree)[0]

  return side(bounds[0], -jnp.inf), side(bounds[1], jnp.inf)


def _carried_scale(start: Optional[EpochStart], first_step: str
                   ) -> tuple[jax.Array, jax.Array]:
  """``(use, scale)``: whether ``start`` sets the first step, and its scale."""
  if start is None or first_step != "carried":
    return jnp.asarray(False), jnp.asarray(0.0, jnp.float32)
  scale = jnp.asarray(start.step_scale, jnp.float32)
  return (scale > 0) & jnp.isfinite(scale), scale


def _curvature_scale(s: Any, y: Any, made: jax.Array) -> jax.Array:
  """``s'y / y'y`` where the step ``s`` was ``made`` with positive
  curvature ``s'y``, else 0."""
  sy = optax.tree.real(optax.tree.vdot(s, y))
  yy = optax.tree.norm(y, squared=True)
  ok = made & (sy > 0) & (yy > 0)
  return jnp.where(ok, sy / jnp.where(ok, yy, 1.0), 0.0).astype(jnp.float32)


class _FirstStepState(NamedTuple):
  count: jax.Array


def _carried_first_direction(use: jax.Array, scale: jax.Array
                             ) -> optax.GradientTransformationExtraArgs:
  """At the first iteration, when ``use``: the direction ``scale * grad``
  in place of L-BFGS's own first one (a scaled gradient too: its memory is
  empty). The branch is on the iteration count, which stays unbatched
  under ``vmap``, so later iterations pay nothing."""

  def init_fn(params):
    del params
    return _FirstStepState(jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, grad, **extra_args):
    del params, extra_args
    first = lambda: jax.tree.map(
        lambda u, g: jnp.where(use, scale.astype(g.dtype) * g, u), updates,
        grad)
    updates = jax.lax.cond(state.count == 0, first, lambda: updates)
    return updates, _FirstStepState(state.count + 1)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def optax_lbfgs_epoch(loss_fn: Callable[..., jax.Array], maxiter: int,
                      history_size: int = 10, *,
                      max_linesearch_steps: int = 20,
                      slope_rtol: float = 1e-4, curv_rtol: float = 0.9,
                      scale_init_precond: bool = True,
                      first_step: str = "carried",
                      tol: float = 0.0, has_aux: bool = False) -> EpochFn:
  """An epoch of ``optax.lbfgs`` as one pure, compiled function.

  The zoom line search starts every search from the quasi-Newton step 1
  (``initial_guess_strategy="one"``, as SciPy's L-BFGS-B does), and with
  ``scale_init_precond`` the first step of a fresh run has unit length
  (``-g / ||g||``), also as SciPy. The loss and gradient at the accepted
  step come out of the line search and are reused, so an iteration costs
  its line-search trials only: the initial evaluation of the epoch is done
  once, before the loop, or not at all when ``start`` brings the loss and
  gradient at ``params`` (the previous epoch's last line-search values); no
  per-iteration ``lax.cond`` picks between a stored and a fresh gradient
  (which ``vmap`` would turn into evaluating both).

  An epoch of ``maxiter`` iterations stores at most ``maxiter - 1``
  curvature pairs, so the memory holds ``min(history_size, maxiter - 1)``:
  the same directions as ``history_size`` slots (the unused ones have zero
  weight and add nothing to the two-loop recursion), without reading and
  zero-filling the empty slots (4 slots instead of 10 at the paper's 5
  iterations and memory 10; docs/optimizer.md).

  With ``first_step="carried"``, an epoch whose ``start`` brings the
  previous epoch's :attr:`EpochStats.step_scale` ``gamma`` takes
  ``-gamma * g`` as its first direction: the step L-BFGS would have scaled
  its next direction by, had the run gone on. The memory of curvature pairs
  is still discarded. Without it, the first line search of every epoch
  starts from a unit-length step that is orders of magnitude too short and
  spends several trials lengthening it (docs/optimizer.md measures both).

  Args:
    loss_fn: ``loss_fn(params, *args) -> scalar``.
    maxiter: iterations per epoch.
    history_size: L-BFGS memory.
    max_linesearch_steps: trials per line search.
    slope_rtol: sufficient decrease constant ``c1`` (strong Wolfe).
    curv_rtol: curvature constant ``c2`` (strong Wolfe).
    scale_init_precond: scale the initial inverse Hessian (``gamma_k``).
    first_step: ``"carried"`` (see above) or ``"unit"`` (every epoch's
      first step has unit length, as a fresh SciPy L-BFGS-B run's).
    tol: stop early when the gradient's norm falls below it.
    has_aux: ``loss_fn`` returns ``(loss, aux)``; the epoch's
      :attr:`EpochStats.aux` is ``aux`` at the returned parameters.

  Returns:
    ``epoch(params, *args, start=None, **kwargs) -> (params, EpochStats)``,
    traceable (jit/vmap); ``args`` and ``kwargs`` go to ``loss_fn``;
    ``start`` is an optional :class:`EpochStart`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> from glocal_jax import optim
    >>> def rosenbrock(p, a, b=100.0):
    ...   return (a - p["x"]) ** 2 + b * (p["y"] - p["x"] ** 2) ** 2
    >>> epoch = jax.jit(optim.optax_lbfgs_epoch(rosenbrock, maxiter=100))
    >>> p, stats = epoch({"x": jnp.array(-1.0), "y": jnp.array(1.0)}, 1.0,
    ...                  b=100.0)
    >>> round(float(p["x"]), 3), round(float(p["y"]), 3)
    (1.0, 1.0)
  """
  _check_first_step(first_step)
  value_of, aux_of = _objective(loss_fn, has_aux)
  memory_size = epoch_memory_size(history_size, maxiter)
  linesearch = optax.scale_by_zoom_linesearch(
      max_linesearch_steps=max_linesearch_steps, slope_rtol=slope_rtol,
      curv_rtol=curv_rtol, initial_guess_strategy="one")

  def epoch(params, *args, start: Optional[EpochStart] = None, **kwargs):
    params, unravel, start = _raveled(params, start)
    # optax.lbfgs's chain, with the first direction set from ``start``.
    solver = optax.chain(
        optax.scale_by_lbfgs(memory_size, scale_init_precond),
        _carried_first_direction(*_carried_scale(start, first_step)),
        optax.scale(-1.0), linesearch)
    fn = lambda x: value_of(unravel(x), args, kwargs)
    value_and_grad = lambda: jax.value_and_grad(fn)(params)
    if start is None:
      (value, grad), evaluated = value_and_grad(), 1
    else:
      dtype = jax.eval_shape(fn, params).dtype
      value, grad = jax.lax.cond(
          start.fresh, value_and_grad,
          lambda: (jnp.asarray(start.value, dtype), start.grad))
      evaluated = jnp.where(start.fresh, 1, 0)

    def cond(carry):
      _, _, _, grad, iterations, _ = carry
      return (iterations < maxiter) & (optax.tree.norm(grad) > tol)

    def body(carry):
      params, state, value, grad, iterations, evaluations = carry
      updates, state = solver.update(grad, state, params, value=value,
                                     grad=grad, value_fn=fn)
      params = optax.apply_updates(params, updates)
      # The line search's state holds the value and gradient at the new
      # point, and its number of steps.
      get = functools.partial(optax.tree.get, state)
      return (params, state, get("value"), get("grad"), iterations + 1,
              evaluations + get("info").num_linesearch_steps)

    init = (params, solver.init(params), value, grad, jnp.asarray(0),
            jnp.asarray(evaluated))
    params, state, value, grad, iterations, evaluations = jax.lax.while_loop(
        cond, body, init)
    # scale_by_lbfgs's state: the point and gradient before the last step.
    before, grad_before = (optax.tree.get(state, name)
                           for name in ("params", "updates"))
    step_scale = _curvature_scale(params - before, grad - grad_before,
                                  iterations > 0)
    params = unravel(params)
    return params, EpochStats(value, evaluations, iterations, unravel(grad),
                              step_scale, aux_of(params, args, kwargs))

  return epoch


def jaxopt_lbfgsb_epoch(loss_fn: Callable[..., jax.Array], maxiter: int,
                        history_size: int = 10, *,
                        bounds: Optional[tuple[Any, Any]] = None,
                        solver: Optional[str] = None,
                        linesearch: str = "zoom", linesearch_init: str = "max",
                        maxls: int = 20, scale_first_step: bool = True,
                        first_step: str = "carried",
                        tol: float = 0.0, has_aux: bool = False) -> EpochFn:
  """An epoch of jaxopt's L-BFGS(-B) as one pure function, unbounded (as
  the authors ran it) or in a box.

  With ``bounds=(lower, upper)`` it runs ``jaxopt.LBFGSB`` in that box: the
  starting point is clipped into it and every iterate stays inside. Without
  bounds, ``solver="lbfgs"`` (the default) runs ``jaxopt.LBFGS``: with no bounds,
  L-BFGS-B *is* L-BFGS (no variable is ever at a bound, so the generalised
  Cauchy point and subspace minimisation reduce to the two-loop quasi-Newton
  direction), and ``jaxopt.LBFGS`` skips the two sorts of all ``n``
  parameters that ``jaxopt.LBFGSB`` performs every iteration to find the
  Cauchy point (for GLocal-K's 1.2M parameters on the CPU, four times the
  cost of a loss evaluation; docs/optimizer.md). ``solver="lbfgsb"`` runs
  ``jaxopt.LBFGSB`` itself.

  Defaults (see ``docs/optimizer.md`` for the measurements behind them):

  * ``linesearch_init="max"``: every line search starts from step 1, the
    quasi-Newton step, as SciPy's L-BFGS-B does (jaxopt's default
    ``"increase"`` starts from 1.5x the previous step, so it overshoots and
    spends extra evaluations).
  * ``scale_first_step``: the first iteration of a fresh run has no curvature
    history and steps along ``-g``; SciPy tries the unit-length step
    ``-g / ||g||`` there. Scaling the initial Hessian approximation by
    ``||g||`` makes jaxopt do the same, instead of a step of length ``||g||``
    (about 1e4 here) that the line search must then undo.

  Args:
    loss_fn: ``loss_fn(params, *args) -> scalar``.
    maxiter: iterations per epoch.
    history_size: L-BFGS memory.
    bounds: ``(lower, upper)``, each None (unbounded), a number for every
      parameter, or a pytree of the parameters' structure whose leaves are
      numbers, arrays broadcastable to the leaf, or None (that leaf
      unbounded). Needs ``jaxopt.LBFGSB`` (chosen when ``solver`` is None).
    solver: ``"lbfgs"`` (``jaxopt.LBFGS``) or ``"lbfgsb"``
      (``jaxopt.LBFGSB``); None: ``"lbfgsb"`` with bounds, else
      ``"lbfgs"``.
    linesearch: jaxopt line search (``"zoom"``, ``"backtracking"``,
      ``"hager-zhang"``).
    linesearch_init: jaxopt's step initialisation (``"max"``, ``"increase"``,
      ``"current"``).
    maxls: maximum line-search iterations.
    scale_first_step: start a fresh run with a unit-length first step.
    first_step: ``"carried"``: an epoch whose ``start`` brings a step scale
      (:class:`EpochStart`) starts with it as jaxopt's initial
      inverse-Hessian scale, as :func:`optax_lbfgs_epoch` does; ``"unit"``:
      every epoch's first step is as ``scale_first_step`` says.
    tol: stop early when the gradient's norm falls below it.
    has_aux: as in :func:`optax_lbfgs_epoch`.

  Returns:
    ``epoch(params, *args, start=None, **kwargs) -> (params, EpochStats)``,
    traceable (jit/vmap). Of ``start``, only the step scale is used: jaxopt
    offers no public way to begin a run from a known loss and gradient, so
    every epoch evaluates its starting point. jaxopt is imported here, on
    first use (``import glocal_jax`` does not import it).

  Examples:
    A least-squares fit whose unconstrained optimum ``(2, -1)`` lies
    outside the box ``x <= 1, y >= 0``:

    >>> import jax, jax.numpy as jnp
    >>> from glocal_jax import optim
    >>> loss = lambda p: (p["x"] - 2.0) ** 2 + (p["y"] + 1.0) ** 2
    >>> box = ({"x": None, "y": 0.0}, {"x": 1.0, "y": None})
    >>> epoch = jax.jit(optim.jaxopt_lbfgsb_epoch(loss, 20, bounds=box))
    >>> p, _ = epoch({"x": jnp.array(0.0), "y": jnp.array(3.0)})
    >>> round(float(p["x"]), 4), round(float(p["y"]), 4)
    (1.0, 0.0)
  """
  import jaxopt  # pylint: disable=g-import-not-at-top
  _check_first_step(first_step)
  value_of, aux_of = _objective(loss_fn, has_aux)
  if solver is None:
    solver = "lbfgs" if bounds is None else "lbfgsb"
  if solver not in ("lbfgs", "lbfgsb"):
    raise ValueError(f"solver must be 'lbfgs' or 'lbfgsb', got {solver!r}.")
  if bounds is not None and solver != "lbfgsb":
    raise ValueError("bounds need solver='lbfgsb' (jaxopt.LBFGS has none).")
  make = jaxopt.LBFGS if solver == "lbfgs" else jaxopt.LBFGSB

  def epoch(params, *args, start: Optional[EpochStart] = None, **kwargs):
    box = (None if bounds is None or solver == "lbfgs"
           else _box(bounds, params))
    params, unravel, _ = _raveled(params, None)
    if box is not None:
      params = jnp.clip(params, *box)
    # What the solver takes after the parameters: nothing for LBFGS, the
    # box (None: unbounded) for LBFGSB.
    bounds_arg = () if solver == "lbfgs" else (box,)
    opt = make(fun=jax.value_and_grad(
        lambda x, args, kwargs: value_of(unravel(x), args, kwargs)),
               value_and_grad=True, maxiter=maxiter, tol=tol,
               history_size=history_size, linesearch=linesearch,
               linesearch_init=linesearch_init, maxls=maxls)
    state = opt.init_state(params, *bounds_arg, args, kwargs)
    # The initial inverse Hessian H_0 = gamma I (jaxopt.LBFGSB: B_0 = I/gamma).
    gamma = state.gamma if solver == "lbfgs" else 1.0 / state.theta
    if scale_first_step:
      gnorm = optax.tree.norm(state.grad)
      gamma = 1.0 / jnp.where(gnorm > 0, gnorm, 1.0)
    use, scale = _carried_scale(start, first_step)
    gamma = jnp.where(use, scale, gamma)
    if solver == "lbfgs":
      state = state._replace(gamma=gamma.astype(state.gamma.dtype))
    else:
      state = state._replace(theta=(1.0 / gamma).astype(state.theta.dtype))

    def cond(carry):
      _, s = carry
      return (s.iter_num < maxiter) & (s.error > tol) & ~s.failed_linesearch

    def body(carry):
      return tuple(opt.update(*carry, *bounds_arg, args, kwargs))

    params, state = jax.lax.while_loop(cond, body, (params, state))
    # jaxopt's L-BFGS(-B) sets its zoom line search up with has_aux=True and
    # passes no aux, so each search's init_state calls the loss once more for
    # an aux that is None, and counts it; the call's results are unused and
    # XLA removes it (docs/optimizer.md measures this): not an evaluation.
    evaluations = state.num_fun_eval - (state.iter_num if linesearch == "zoom"
                                        else 0)
    # jaxopt keeps the last pair's curvature scale as its H_0 for the next
    # iteration.
    gamma = state.gamma if solver == "lbfgs" else 1.0 / state.theta
    made = (state.iter_num > 0) & (gamma > 0) & jnp.isfinite(gamma)
    step_scale = jnp.where(made, gamma, 0.0).astype(jnp.float32)
    params = unravel(params)
    return params, EpochStats(state.value, evaluations, state.iter_num,
                              unravel(state.grad), step_scale,
                              aux_of(params, args, kwargs))

  return epoch


def scipy_lbfgsb_epoch(loss_fn: Callable[..., jax.Array], maxiter: int,
                       history_size: int = 10, *,
                       has_aux: bool = False) -> EpochFn:
  """An epoch of SciPy's L-BFGS-B on a jitted ``value_and_grad``.

  Runs on the host (not traceable): SciPy works in float64 on the flattened
  parameters, JAX evaluates the loss in the parameters' dtype.

  Args:
    loss_fn: ``loss_fn(params, *args) -> scalar``.
    maxiter: L-BFGS-B iterations per epoch (SciPy's ``maxiter``).
    history_size: L-BFGS-B memory (SciPy's ``maxcor``).
    has_aux: as in :func:`optax_lbfgs_epoch`.

  Returns:
    ``epoch(params, *args, start=None, **kwargs) -> (params, EpochStats)``;
    ``start``
    is ignored (``scipy.optimize.minimize`` takes no initial gradient and
    no initial Hessian scale, so every epoch's first step has unit length),
    and the stats' ``step_scale`` is 0 (unknown).
  """

  import scipy.optimize  # pylint: disable=g-import-not-at-top
  value_of, aux_of = _objective(loss_fn, has_aux)

  @jax.jit
  def value_and_flat_grad(params, args, kwargs):
    value, grad = jax.value_and_grad(value_of)(params, args, kwargs)
    return value, ravel_pytree(grad)[0]

  def epoch(params, *args, start: Optional[EpochStart] = None, **kwargs):
    del start  # see above
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype

    def fun(x):
      value, grad = value_and_flat_grad(unravel(jnp.asarray(x, dtype)), args,
                                        kwargs)
      return float(value), np.asarray(grad, np.float64)

    res = scipy.optimize.minimize(
        fun, np.asarray(flat, np.float64), jac=True, method="L-BFGS-B",
        options={"maxiter": maxiter, "maxcor": history_size})
    params = unravel(jnp.asarray(res.x, dtype))
    return (params,
            EpochStats(res.fun, res.nfev, res.nit,
                       unravel(jnp.asarray(res.jac, dtype)), np.float32(0),
                       aux_of(params, args, kwargs)))

  return epoch


def lbfgsb_epoch(driver: str, loss_fn: Callable[..., jax.Array], maxiter: int,
                 history_size: int = 10, *, jit: bool = True,
                 **options) -> EpochFn:
  """A ready-to-call epoch of ``driver``.

  ``"optax"``: :func:`optax_lbfgs_epoch`; ``"jaxopt"``:
  :func:`jaxopt_lbfgsb_epoch` with ``jaxopt.LBFGS`` (L-BFGS: without
  bounds L-BFGS-B is L-BFGS); ``"jaxopt-lbfgsb"``: the same with
  ``jaxopt.LBFGSB``; ``"scipy"``: :func:`scipy_lbfgsb_epoch`. ``options``
  go to the optax or jaxopt epoch function. The JAX drivers' epochs are
  jit-compiled unless ``jit=False`` (for a caller that wraps them in a
  compiled program of its own).
  """
  wrap = jax.jit if jit else (lambda fn: fn)
  if driver == "optax":
    return wrap(optax_lbfgs_epoch(loss_fn, maxiter, history_size, **options))
  if driver in ("jaxopt", "jaxopt-lbfgsb"):
    solver = "lbfgs" if driver == "jaxopt" else "lbfgsb"
    return wrap(jaxopt_lbfgsb_epoch(loss_fn, maxiter, history_size,
                                    solver=solver, **options))
  if driver == "scipy":
    if options:
      raise ValueError(f"the scipy driver takes no options, got {options}.")
    return scipy_lbfgsb_epoch(loss_fn, maxiter, history_size)
  raise ValueError(f"driver must be one of {DRIVERS}, got {driver!r}.")
