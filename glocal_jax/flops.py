"""Analytic FLOP counts of one loss-and-gradient evaluation.

Counted from the shapes, one multiply-add = 2 FLOPs, for the products that
dominate: the layers' matrix products, the local kernels (Eq. 2) and the
global convolutions (Eq. 6); elementwise work (activations, masks, the
regulariser) is left out. XLA's ``cost_analysis`` is no substitute: on GPUs
it does not count the matmuls handed to cuBLAS (it reported 0.9 GFLOP per
evaluation on an H100 where the CPU backend reported 118 GFLOP for the same
ML-1M-shaped problem).

A product computed densely (the ``dense`` and ``blocked`` methods) costs
``m * n`` cells; computed sparsely it costs its non-zero entries: ``nnz`` for
the first layer on ``R`` and for the output layer, the convolution's
support ``|S|`` for the first layer on ``R_hat``. Gradients: a dense layer's
backward pass is two products (weights and input), the first layer's one
(its input is data) except on ``R_hat``, whose gradient flows into the
global kernel.
"""

from __future__ import annotations

from typing import Optional, Sequence

from glocal_jax import kernels
from glocal_jax.plan import Plan


def per_evaluation(plan: Plan, phase: str, shape: tuple[int, int], nnz: int,
                   hidden: Sequence[int], *, n_dim: int = 5,
                   kernel_size: int = 3, conv_layers: int = 1,
                   aggregation: str | kernels.AggregationFn = "weighted",
                   support: Optional[Sequence[int]] = None) -> float:
  """FLOPs of one ``value_and_grad`` of the ``phase`` loss under ``plan``.

  Args:
    plan: how each product is computed.
    phase: ``"pretrain"`` or ``"finetune"``.
    shape: ``(m, n)``.
    nnz: training ratings.
    hidden: hidden layer sizes.
    n_dim: local kernel dimension ``d``.
    kernel_size, conv_layers, aggregation: the global convolution.
    support: sizes of the convolution's supports ``|S_1|, ...`` (needed for
      a sparse ``conv``; :class:`glocal_jax.sparse.Support` has them).

  Returns:
    FLOPs (float).
  """
  m, n = shape
  sizes = [n, *hidden, n]
  h1, h_last = hidden[0], hidden[-1]
  cells = lambda method, sparse_count: (sparse_count if method == "sparse"
                                        else m * n)
  # Local kernels: K = ||u||^2 + ||v||^2 - 2 u v^T, and its gradient.
  flops = sum(3 * 2 * a * b * n_dim for a, b in zip(sizes[:-1], sizes[1:]))
  middle = sum(2 * m * a * b for a, b in zip(hidden[:-1], hidden[1:]))
  encode = 2 * cells(plan.input, nnz) * h1 * 2 + middle * 3  # fwd + bwd
  output = 2 * cells(plan.output, nnz) * h_last * 3
  if phase == "pretrain":
    return float(flops + encode + output)
  if phase != "finetune":
    raise ValueError(f"phase must be 'pretrain' or 'finetune', got {phase!r}")
  flops += output
  if kernels.uses_pooling(aggregation):  # the pooling pass on R (Eq. 4)
    flops += encode + 2 * m * h_last * 2
  t2 = kernel_size * kernel_size
  if plan.conv == "sparse":
    if support is None or len(support) != conv_layers:
      raise ValueError("a sparse conv needs the support sizes per layer.")
    conv_cells, r_hat_cells = list(support), support[-1]
  else:
    conv_cells, r_hat_cells = [m * n] * conv_layers, m * n
  flops += sum(2 * t2 * c * 3 for c in conv_cells)  # fwd, dx, dkernel
  flops += 2 * r_hat_cells * h1 * 3 + middle * 3    # first layer on R_hat
  return float(flops)
