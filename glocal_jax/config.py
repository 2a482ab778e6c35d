"""Hyper-parameters of GLocal-K and the paper's per-dataset presets."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Callable

from glocal_jax import kernels
from glocal_jax.kernels import AGGREGATIONS
from glocal_jax.kernels import POOLINGS
from glocal_jax.optim import DRIVERS
from glocal_jax.optim import FIRST_STEPS
from glocal_jax.plan import parse_representation

ORIENTATIONS: tuple[str, ...] = ("items", "users")


@dataclasses.dataclass(frozen=True)
class GLocalKConfig:
  """Everything that defines one GLocal-K training run (docs/model.md, Optimisation).

  Attributes:
    hidden: hidden layer sizes of the autoencoder.
    n_dim: dimension of the local kernel embeddings ``u_i``, ``v_j``.
    kernel_size: global kernel size ``t`` (odd).
    conv_layers: number of stacked global convolutions.
    aggregation: ``"weighted"`` (paper Eq. 5), ``"mean"`` (Table 2), or a
      function ``aggregate(pooled (m,), bank (m, t*t), dot_scale) ->
      (t*t,)`` (:func:`glocal_jax.kernels.global_kernel`).
    pooling: Eq. 4's summary of each item's pre-trained predictions:
      ``"mean"`` (the paper's average, computed from the hidden layer
      without the ``(m, n)`` predictions) or a function ``pool(predictions
      (m, n)) -> (m,)``, e.g. ``lambda p: jnp.max(p, axis=1)`` (one pass
      over the ``(m, n)`` predictions per fine-tuning evaluation), in every
      representation. Recorded by name like ``local_kernel``.
    lambda_2: L2 penalty on the weights.
    lambda_s: L2 penalty on the local kernel matrices.
    dot_scale: scale of the weighted aggregation.
    pretrain_epochs: fresh L-BFGS-B runs in pre-training.
    finetune_epochs: fresh L-BFGS-B runs in fine-tuning (0: SparseFC).
    pretrain_maxiter: L-BFGS-B iterations per pre-training epoch.
    finetune_maxiter: L-BFGS-B iterations per fine-tuning epoch.
    history_size: L-BFGS-B memory.
    optimizer: ``"optax"`` (compiled ``optax.lbfgs``, the default: fewest
      evaluations per iteration, docs/optimizer.md), ``"jaxopt"`` (compiled
      ``jaxopt.LBFGS``, the unbounded L-BFGS-B), ``"jaxopt-lbfgsb"``
      (``jaxopt.LBFGSB``) or ``"scipy"`` (SciPy's L-BFGS-B on the host).
    first_step: ``"carried"`` (the default): an epoch after the first of
      its phase takes the previous epoch's last curvature scale
      ``s'y / y'y`` for its first step, where a fresh L-BFGS-B run steps a
      unit length; the memory of curvature pairs is discarded either way.
      ``"unit"``: every epoch is exactly a fresh run, as in the authors'
      code (the scipy driver can only do this). docs/optimizer.md measures
      both.
    local_kernel: True: the paper's finite-support RBF kernel (Eq. 2);
      False: dense layers instead of kernel layers (I-AutoRec); or a
      function ``kernel(u (n_in, 1, d), v (1, n_out, d)) -> (n_in, n_out)``
      to use instead of Eq. 2 (e.g. a Gaussian RBF), in every
      representation. A function is recorded by its qualified name in
      :meth:`to_dict` (a resumed run must pass the same one).
    representation: how the loss is computed on the ratings: ``"dense"``,
      ``"blocked"``, ``"sparse"``, one per product (e.g.
      ``"input=sparse:conv=dense:output=sparse"``) or ``"auto"`` (see
      :mod:`glocal_jax.representations`; all give the same numbers to
      float32 rounding).
    block_size: items per block of blocked products (0: from memory).
    chunk_size: entries per chunk of sparse products (0: device default).
    orientation: ``"items"`` (the paper's item-based autoencoder: each item
      row is a sample) or ``"users"`` (the same model on the transposed
      matrix, user-based; metrics are the same either way, NDCG per user).
  """

  hidden: tuple[int, ...] = (500, 500)
  n_dim: int = 5
  kernel_size: int = 3
  conv_layers: int = 1
  aggregation: str | Callable = "weighted"
  pooling: str | Callable = "mean"
  lambda_2: float = 20.0
  lambda_s: float = 0.006
  dot_scale: float = 1.0
  pretrain_epochs: int = 30
  finetune_epochs: int = 60
  pretrain_maxiter: int = 5
  finetune_maxiter: int = 5
  history_size: int = 10
  optimizer: str = "optax"
  first_step: str = "carried"
  local_kernel: bool | Callable = True
  representation: str = "auto"
  block_size: int = 0
  chunk_size: int = 0
  orientation: str = "items"

  def __post_init__(self):
    hidden = self.hidden
    if isinstance(hidden, numbers.Integral):  # one hidden layer
      hidden = (hidden,)
    try:
      hidden = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
      raise ValueError(f"hidden must be layer sizes, e.g. (500, 500), got "
                       f"{self.hidden!r}.") from None
    object.__setattr__(self, "hidden", hidden)
    problems = []
    if not self.hidden or any(h <= 0 for h in self.hidden):
      problems.append(f"hidden sizes must be positive, got {self.hidden}")
    for name in ("n_dim", "conv_layers", "pretrain_maxiter",
                 "finetune_maxiter", "history_size"):
      if getattr(self, name) <= 0:
        problems.append(f"{name} must be positive, got {getattr(self, name)}")
    for name in ("pretrain_epochs", "finetune_epochs"):
      if getattr(self, name) < 0:
        problems.append(
            f"{name} must be non-negative, got {getattr(self, name)}")
    if self.pretrain_epochs + self.finetune_epochs == 0:
      problems.append("pretrain_epochs + finetune_epochs must be positive")
    if self.kernel_size <= 0 or self.kernel_size % 2 == 0:
      problems.append(
          f"kernel_size must be a positive odd number, got {self.kernel_size}")
    if not callable(self.aggregation) and self.aggregation not in AGGREGATIONS:
      problems.append(f"aggregation must be one of {tuple(AGGREGATIONS)} or a "
                      f"function, got {self.aggregation!r}")
    if not callable(self.pooling) and self.pooling not in POOLINGS:
      problems.append(f"pooling must be one of {tuple(POOLINGS)} or a "
                      f"function, got {self.pooling!r}")
    if not (isinstance(self.local_kernel, bool) or callable(self.local_kernel)):
      problems.append(f"local_kernel must be True, False or a function, got "
                      f"{self.local_kernel!r}")
    for name in ("lambda_2", "lambda_s"):
      if not 0 <= getattr(self, name) < float("inf"):  # also rejects NaN
        problems.append(f"{name} must be finite and >= 0, got "
                        f"{getattr(self, name)}")
    if not (abs(self.dot_scale) < float("inf") and self.dot_scale != 0):
      problems.append(f"dot_scale must be finite and non-zero, got "
                      f"{self.dot_scale}")
    if self.optimizer not in DRIVERS:
      problems.append(
          f"optimizer must be one of {DRIVERS}, got {self.optimizer!r}")
    if self.first_step not in FIRST_STEPS:
      problems.append(f"first_step must be one of {FIRST_STEPS}, got "
                      f"{self.first_step!r}")
    elif self.optimizer == "scipy" and self.first_step != "unit":
      problems.append("the scipy driver takes no initial Hessian scale: use "
                      "first_step='unit' with optimizer='scipy'")
    try:
      parse_representation(self.representation)
    except ValueError as e:
      problems.append(str(e).rstrip("."))
    for name in ("block_size", "chunk_size"):
      if getattr(self, name) < 0:
        problems.append(f"{name} must be >= 0 (0: automatic), got "
                        f"{getattr(self, name)}")
    if self.orientation not in ORIENTATIONS:
      problems.append(f"orientation must be one of {ORIENTATIONS}, got "
                      f"{self.orientation!r}")
    if problems:
      raise ValueError("Invalid GLocalKConfig: " + "; ".join(problems) + ".")

  def architecture(self, n_items: int, n_users: int) -> str:
    """One line that says what trains on an ``n_items x n_users`` matrix,
    e.g. ``item-based autoencoder 943 -> 500 -> 500 -> 943, ...``."""
    rows, width = ((n_items, n_users) if self.orientation == "items"
                   else (n_users, n_items))
    sizes = " -> ".join(str(s) for s in (width, *self.hidden, width))
    if self.local_kernel is False:
      layers = "dense layers (I-AutoRec)"
    elif callable(self.local_kernel):
      layers = (f"kernel layers (local kernel "
                f"{self.to_dict()['local_kernel']}, d={self.n_dim})")
    else:
      layers = f"kernel layers (Eq. 2, d={self.n_dim})"
    side = "item" if self.orientation == "items" else "user"
    line = (f"{side}-based autoencoder {sizes} on {rows} rows, {layers}; "
            f"pre-training {self.pretrain_epochs} x "
            f"{self.pretrain_maxiter} L-BFGS iterations")
    if self.finetune_epochs:
      named = self.to_dict()
      line += (f", fine-tuning {self.finetune_epochs} x "
               f"{self.finetune_maxiter} with a {self.kernel_size}x"
               f"{self.kernel_size} global kernel ({self.conv_layers} conv "
               f"layer(s), {named['aggregation']} aggregation"
               + ("" if self.pooling == "mean" else
                  f", {named['pooling']} pooling") + ")")
    return line

  def replace(self, **changes) -> "GLocalKConfig":
    """A copy with ``changes`` applied (and validated)."""
    return dataclasses.replace(self, **changes)

  @property
  def local_kernel_fn(self) -> kernels.LocalKernelFn:
    """The local kernel of the kernel layers: Eq. 2's
    :func:`glocal_jax.kernels.local_kernel` unless a function was given
    (unused when ``local_kernel`` is False: the layers have no ``u, v``)."""
    return (self.local_kernel if callable(self.local_kernel)
            else kernels.local_kernel)

  @property
  def pooling_fn(self) -> kernels.PoolingFn:
    """Eq. 4's pooling function (:func:`glocal_jax.kernels.pooling_fn`)."""
    return kernels.pooling_fn(self.pooling)

  def to_dict(self) -> dict:
    """The fields as JSON-able values; a function as ``module.qualname``."""
    named = lambda f: f"{f.__module__}.{f.__qualname__}"
    return {k: (named(v) if callable(v) else v)
            for k, v in dataclasses.asdict(self).items()}


PRESETS: dict[str, GLocalKConfig] = {
    "ml-100k": GLocalKConfig(
        pretrain_maxiter=5, finetune_maxiter=5, pretrain_epochs=30,
        finetune_epochs=60, lambda_2=20.0, lambda_s=0.006, dot_scale=1.0),
    "ml-1m": GLocalKConfig(
        pretrain_maxiter=50, finetune_maxiter=10, pretrain_epochs=20,
        finetune_epochs=30, lambda_2=70.0, lambda_s=0.018, dot_scale=0.5),
    "douban": GLocalKConfig(
        pretrain_maxiter=5, finetune_maxiter=5, pretrain_epochs=20,
        finetune_epochs=60, lambda_2=10.0, lambda_s=0.022, dot_scale=2.0),
    # Not the paper's: chosen by experiments/tune.py on a validation split
    # (results/tune_*_cpu.json record the command and the grid).
    "flixster": GLocalKConfig(
        pretrain_maxiter=5, finetune_maxiter=5, pretrain_epochs=20,
        finetune_epochs=5, lambda_2=5.0, lambda_s=0.011, dot_scale=2.0),
    "yahoo_music": GLocalKConfig(
        pretrain_maxiter=5, finetune_maxiter=5, pretrain_epochs=20,
        finetune_epochs=15, lambda_2=5.0, lambda_s=0.011, dot_scale=2.0),
}
# The presets that tune.py chose, by the result file that chose them.
TUNED_PRESETS = {"flixster": "results/tune_flixster_cpu.json",
                 "yahoo_music": "results/tune_yahoo_music_cpu.json"}


def preset(dataset: str, **overrides) -> GLocalKConfig:
  """The paper's configuration for ``dataset`` (or, for the data sets of
  :data:`TUNED_PRESETS`, the one tune.py chose), with ``overrides`` applied.

  Args:
    dataset: a key of :data:`PRESETS`.
    **overrides: any :class:`GLocalKConfig` field.
  """
  if dataset not in PRESETS:
    raise ValueError(
        f"No preset for dataset {dataset!r}; known: {sorted(PRESETS)}.")
  return PRESETS[dataset].replace(**overrides)
