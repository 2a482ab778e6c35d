"""One evaluated training run: what the scripts in ``experiments/`` share.

:func:`fit` trains GLocal-K on a :class:`~glocal_jax.data.RatingData`,
evaluates after every epoch, optionally checkpoints and resumes, and returns
a JSON-able summary with both protocols:

* ``best`` -- the paper's protocol: the best test value of each metric over
  the fine-tuning epochs (it selects on the test set);
* ``selected`` -- the honest protocol, when the data has a validation split:
  the test metrics of the fine-tuning epoch with the lowest validation RMSE.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glocal_jax import baselines
from glocal_jax import checkpoint
from glocal_jax import flops
from glocal_jax import metrics
from glocal_jax import optim
from glocal_jax import plan as plan_lib
from glocal_jax import representations
from glocal_jax import training
from glocal_jax.config import GLocalKConfig
from glocal_jax.data import MODEL_SCALE
from glocal_jax.data import RatingData
from glocal_jax.data import RatingScale
from glocal_jax.ratings import Ratings
from glocal_jax.representations import TrainingData

METRICS: tuple[str, ...] = ("rmse", "mae", "ndcg")
# Beside a run's checkpoint: the checkpoint of its epoch of least validation
# RMSE (the honest protocol's selection), when it has a validation split.
SELECTED = "selected"
HIGHER_IS_BETTER = {"rmse": False, "mae": False, "ndcg": True}


def say(line: str) -> None:
  """The default ``log``: prints ``line`` at once (flushed, so that a run's
  progress shows as it happens, also through a pipe or ``tee``)."""
  print(line, flush=True)


def device_info() -> dict:
  """JAX platform and device kind of the default device."""
  device = jax.devices()[0]
  return {"platform": device.platform, "kind": device.device_kind,
          "count": jax.device_count()}


def _splits(data: RatingData) -> dict:
  """What an evaluation reads: the training ratings (for the fallback of
  cold pairs) and the evaluated splits, test and validation if any."""
  splits = {"test": data.test}
  if data.valid is not None:
    splits["valid"] = data.valid
  return jax.device_put({"train": data.train, "splits": splits})


def oriented(data: RatingData, config: GLocalKConfig) -> RatingData:
  """``data`` as ``config``'s model sees it: items as rows
  (``orientation="items"``, the paper's), or transposed (``"users"``)."""
  return data.transposed() if config.orientation == "users" else data


def model_ratings(data: RatingData):
  """``data.train`` on the model's scale (:meth:`RatingScale.to_model`):
  what the model trains on."""
  return data.scale.to_model_ratings(data.train)


def scaled_metrics(predictions: jax.Array, targets: Ratings,
                   scale: RatingScale) -> dict:
  """``{"rmse", "mae", "ndcg"}`` of ``(k,)`` predictions on ``scale``:
  RMSE and MAE of the predictions clipped to it, in its units; NDCG with
  the gains ``2^r - 1`` of the ratings mapped onto the model's 1..5
  (:meth:`RatingScale.to_model`; the ranking is unchanged), so that it
  means the same on 1..100 as on the paper's 1..5 (where it is
  :func:`glocal_jax.metrics.evaluate` exactly)."""
  clipped = jnp.clip(predictions, scale.low, scale.high)
  out = metrics.evaluate(predictions, targets, scale.low, scale.high)
  if not scale.is_model_scale():
    out["ndcg"] = metrics.ndcg(scale.to_model(clipped),
                               scale.to_model_ratings(targets), *MODEL_SCALE)
  return out


def _as_items_by_users(targets: Ratings) -> Ratings:
  """The entries of a transposed split as the original items x users
  (unsorted: every metric is independent of the entries' order)."""
  return Ratings(targets.users, targets.items, targets.values,
                 targets.shape[::-1])


@functools.partial(jax.jit, static_argnums=(3, 5, 6, 7, 8, 9, 10))
def _metrics(params, train_data: TrainingData, evaluated: dict,
             finetuned: bool, dot_scale, aggregation, local_kernel,
             stacked: bool, scale: RatingScale, cold_fallback: bool,
             transposed: bool) -> dict:
  """Every metric of every split in one compiled call; with ``stacked``
  parameters, per seed and of the seeds' ensemble (the mean clipped
  prediction). Predictions are mapped back from the model's scale onto
  ``scale``, the pairs of cold users or items predicted by
  :func:`~glocal_jax.baselines.fallback_predictions` (with
  ``cold_fallback``), and clipped to ``scale``. Besides the metrics,
  ``{split}_spread`` (:func:`~glocal_jax.metrics.item_spread`) tells a
  collapsed model. With ``transposed`` (a user-based model), the metrics
  are taken on the original items x users, so NDCG and the spread are per
  user either way."""
  out = {}
  clip = (scale.low, scale.high)

  def evaluate(pred, targets):
    if transposed:
      targets = _as_items_by_users(targets)
    return {**scaled_metrics(pred, targets, scale),
            "spread": metrics.item_spread(jnp.clip(pred, *clip), targets)}

  # One dot_scale per stacked model (a configuration axis), or one for all.
  scale_axis = 0 if stacked and jnp.ndim(dot_scale) == 1 else None
  for split, targets in evaluated["splits"].items():
    def predict(p, dot_scale, targets=targets):
      pred = scale.from_model(representations.predict(
          p, train_data, targets.items, targets.users, finetuned, dot_scale,
          aggregation, local_kernel))
      if not cold_fallback:
        return pred
      return baselines.fallback_predictions(pred, evaluated["train"],
                                            targets.items, targets.users)
    if not stacked:
      out.update({f"{split}_{k}": v for k, v in evaluate(
          predict(params, dot_scale), targets).items()})
      continue
    pred = jax.vmap(predict, in_axes=(0, scale_axis))(params, dot_scale)
    per_seed = jax.vmap(evaluate, in_axes=(0, None))(pred, targets)
    out.update({f"{split}_{k}": v for k, v in per_seed.items()})
    ensemble = jnp.mean(jnp.clip(pred, *clip), axis=0)
    out.update({f"ensemble_{split}_{k}": v for k, v in evaluate(
        ensemble, targets).items()})
  return out


def evaluate(config: GLocalKConfig, params, data: RatingData,
             train_data: TrainingData, phase: str,
             cold_fallback: bool = True, dot_scale=None) -> dict:
  """Test (and validation, if any) metrics of ``params`` after ``phase``.

  ``data``: as the model sees it (:func:`oriented`); ``train_data``: its
  :func:`model_ratings` prepared
  (:func:`training.prepare`). Predictions are mapped back onto
  ``data.scale`` and clipped to it; with ``cold_fallback`` the pairs of
  users or items without a training rating are predicted by
  :func:`~glocal_jax.baselines.fallback_predictions`. Parameters stacked
  over seeds give a list per metric (one value per seed) and
  ``ensemble_*`` values. One compiled call, one transfer. ``dot_scale``:
  instead of ``config``'s, e.g. one per stacked model of
  :func:`fit_configs`.
  """
  stacked = training.is_stacked(params)
  out = jax.device_get(_metrics(params, train_data, _splits(data),
                                phase == "finetune",
                                config.dot_scale if dot_scale is None
                                else dot_scale,
                                config.aggregation, config.local_kernel_fn,
                                stacked, data.scale,
                                cold_fallback, config.orientation == "users"))
  return {k: (np.asarray(v).tolist() if np.ndim(v) else float(v))
          for k, v in out.items()}


def evaluated_counts(data: RatingData) -> dict:
  """How many ratings each split evaluates, and how many of the test
  ratings are of users or items without a training rating."""
  cold_user, cold_item = (np.asarray(c) for c in baselines.cold_entries(
      data.train, data.test.items, data.test.users))
  real = np.asarray(data.test.values) > 0
  counts = {"test_ratings": data.test.count(),
            "test_cold_users": int((real & cold_user).sum()),
            "test_cold_items": int((real & cold_item & ~cold_user).sum())}
  if data.valid is not None:
    counts["valid_ratings"] = data.valid.count()
  return counts


def mean_predictor_rmse(data: RatingData) -> dict:
  """``{split: {predictor: RMSE}}`` of the mean predictors
  (:mod:`glocal_jax.baselines`) on the test and validation splits."""
  out = {}
  for split, targets in (("test", data.test), ("valid", data.valid)):
    if targets is None:
      continue
    out[split] = {by: float(metrics.rmse(
        baselines.mean_predictions(data.train, targets.items, targets.users,
                                   by), targets, data.scale.low,
        data.scale.high)) for by in baselines.MEAN_PREDICTORS}
  return out


def summarise(history: list[dict]) -> dict:
  """``best`` / ``final`` / ``selected`` of an epoch history (dicts with
  ``phase``, ``epoch`` and ``metrics``)."""
  if not history:
    return {}
  phase = "finetune" if any(h["phase"] == "finetune" for h in history) else (
      "pretrain")
  epochs = [h for h in history if h["phase"] == phase]
  summary = {"phase": phase, "final": {
      k: epochs[-1]["metrics"][f"test_{k}"] for k in METRICS}}
  summary["final"]["epoch"] = epochs[-1]["epoch"]
  best = {}
  for k in METRICS:
    # Over the defined values: NDCG is NaN when no user has two test ratings.
    values = np.array([h["metrics"][f"test_{k}"] for h in epochs], float)
    if np.all(np.isnan(values)):
      best[k], best[f"{k}_epoch"] = None, None
      continue
    i = int(np.nanargmax(values) if HIGHER_IS_BETTER[k] else
            np.nanargmin(values))
    best[k] = float(values[i])
    best[f"{k}_epoch"] = epochs[i]["epoch"]
  summary["best"] = best
  if "valid_rmse" in epochs[0]["metrics"]:
    # Among the epochs of both phases: a fine-tuning that ends worse than
    # pre-training on validation keeps the pre-trained model.
    i = int(np.argmin([h["metrics"]["valid_rmse"] for h in history]))
    chosen = history[i]
    summary["selected"] = {k: chosen["metrics"][f"test_{k}"]
                           for k in METRICS}
    summary["selected"].update(phase=chosen["phase"], epoch=chosen["epoch"],
                               valid_rmse=chosen["metrics"]["valid_rmse"])
  return summary


# Predictions whose item spread (metrics.item_spread) is below this share of
# the rating range are one value per user: a collapsed model.
COLLAPSE_SPREAD = 1e-3


def diagnose(summary: dict, history: list[dict], means: dict,
             scale: RatingScale) -> list[str]:
  """What a user must know about a run (one seed): a collapse, a
  fine-tuning that did not help, a model no better than a mean predictor.

  Args:
    summary: :func:`summarise` of ``history``.
    history: the epoch dicts.
    means: :func:`mean_predictor_rmse` of the data.
    scale: the data's rating scale.

  Returns:
    one sentence per finding (empty for a healthy run).
  """
  found = []
  if not history:
    return found
  selected = summary.get("selected")
  checked = {("final", history[-1]["phase"], history[-1]["epoch"])}
  if selected:
    checked.add(("selected", selected["phase"], selected["epoch"]))
  for what, phase, epoch in sorted(checked):
    entry = next(h for h in history
                 if (h["phase"], h["epoch"]) == (phase, epoch))
    # On the test ratings, or the validation ones where there are no test
    # ratings (a run on every rating); NaN, and no finding, with neither.
    spread = entry["metrics"].get("test_spread")
    if spread is None or spread != spread:
      spread = entry["metrics"].get("valid_spread")
    if spread is not None and spread < COLLAPSE_SPREAD * (
        scale.high - scale.low):
      found.append(
          f"the {what} model ({phase} epoch {epoch}) has collapsed: its "
          f"predictions vary by {spread:.2g} across a user's items, i.e. it "
          "predicts one value per user and ranks every user's items alike "
          "(try a smaller dot_scale or lambda_s, or --pretrain_only).")
  if selected and selected["phase"] == "pretrain" and (
      summary["phase"] == "finetune"):
    tuned = min(h["metrics"]["valid_rmse"] for h in history
                if h["phase"] == "finetune")
    found.append(
        f"fine-tuning never beat pre-training on validation (best "
        f"fine-tuning validation RMSE {tuned:.4f}, pre-training epoch "
        f"{selected['epoch']} {selected['valid_rmse']:.4f}): the pre-trained "
        "model is selected.")
  split, value = (("valid", selected["valid_rmse"]) if selected else
                  ("test", history[-1]["metrics"]["test_rmse"]))
  if split in means:
    by, best = min(means[split].items(), key=lambda kv: kv[1])
    if value >= best:
      what = "selected" if selected else "final"
      found.append(
          f"the {what} model's {split} RMSE {value:.4f} is no better than "
          f"the {by}-mean predictor's {best:.4f} on the same ratings: the "
          "model has learnt nothing a mean does not know (its "
          "hyper-parameters need tuning on a validation split).")
  return found


def eta_seconds(history: list[dict], config: GLocalKConfig,
                flop_ratio: float) -> float:
  """Seconds left in the schedule after the last epoch of ``history``.

  From the measured seconds per iteration of each phase (compilation
  excluded) plus the evaluation seconds per epoch, each from the later
  epochs where there are any (a phase's first epoch and the first
  evaluation run cold: caches, the evaluation's own compilation); a phase
  not run yet is estimated from one that has, scaled by ``flop_ratio``
  (fine-tuning over pre-training FLOPs per evaluation,
  :mod:`glocal_jax.flops`).

  Args:
    history: epoch dicts with ``phase``, ``epoch``, ``seconds``,
      ``iterations`` and ``evaluation_seconds``.
    config: the schedule.
    flop_ratio: fine-tuning over pre-training cost per iteration.
  """
  later = lambda records: records[1:] if len(records) > 1 else records
  rate = {}
  for phase in training.PHASES:
    own = later([h for h in history if h["phase"] == phase])
    iterations = sum(int(np.max(h["iterations"])) for h in own)
    if iterations:
      rate[phase] = sum(h["seconds"] for h in own) / iterations
  if "pretrain" not in rate:
    rate["pretrain"] = rate["finetune"] / flop_ratio
  rate.setdefault("finetune", rate["pretrain"] * flop_ratio)
  evaluation = float(np.mean([h.get("evaluation_seconds", 0.0)
                              for h in later(history)]))
  last = history[-1]
  left = training.schedule(config, (last["phase"], last["epoch"]))
  return sum(rate[phase] * getattr(config, f"{phase}_maxiter") + evaluation
             for phase, _ in left)


def phase_flops(config: GLocalKConfig, train_data: TrainingData,
                nnz: int) -> dict[str, float]:
  """FLOPs of one loss-and-gradient evaluation of each phase
  (:func:`glocal_jax.flops.per_evaluation`) of ``nnz`` training ratings
  (passed in: a process need not be able to read sharded data)."""
  support = train_data.support.sizes if train_data.support else None
  return {phase: flops.per_evaluation(
      train_data.plan, phase, train_data.shape, nnz, config.hidden,
      n_dim=config.n_dim, kernel_size=config.kernel_size,
      conv_layers=config.conv_layers, aggregation=config.aggregation,
      support=support) for phase in training.PHASES}


def flop_ratio(config: GLocalKConfig, train_data: TrainingData,
               nnz: int) -> float:
  """Fine-tuning over pre-training FLOPs per evaluation
  (:func:`phase_flops`)."""
  counts = phase_flops(config, train_data, nnz)
  return counts["finetune"] / counts["pretrain"]


def seed_keys(seeds: list[int]) -> jax.Array:
  """``(len(seeds), 2)``: ``jax.random.PRNGKey(s)`` of each seed, stacked."""
  return jnp.stack([jax.random.PRNGKey(s) for s in seeds])


def epoch_line(record: dict, elapsed: float, eta: float) -> str:
  """The log line of one epoch (one seed)."""
  m = record["metrics"]
  line = (f"{record['phase']} epoch {record['epoch']}: loss "
          f"{record['loss']:.2f} ({record['evaluations']} evaluations, "
          f"{record['seconds']:.1f}s")
  if record.get("compile_seconds"):
    line += f" + {record['compile_seconds']:.1f}s compiling"
  line += (f") test RMSE {m['test_rmse']:.4f} MAE {m['test_mae']:.4f} NDCG "
           f"{m['test_ndcg']:.4f}")
  if "valid_rmse" in m:
    line += f" valid RMSE {m['valid_rmse']:.4f}"
  return line + f" | {elapsed:.1f}s elapsed, ETA {eta:.0f}s"


def fingerprint(data: RatingData) -> dict:
  """What identifies the training data of a run (checkpoint.data_fingerprint
  of ``data.train``)."""
  host = data.train.to_host()
  return checkpoint.data_fingerprint(data.name, host.items, host.users,
                                     host.values, data.shape)


def checkpoint_arrays(data: RatingData) -> dict:
  """The training ratings, raw ids and rating scale, so that a checkpoint
  can predict and recommend on its own (:func:`glocal_jax.load_model`), and
  the validation and test ratings (``{split}_rows``, ``{split}_cols``,
  ``{split}_values``: what the user has rated besides training, and what
  the run evaluated)."""
  host = data.train.to_host()
  arrays = {"item_ids": data.item_ids, "user_ids": data.user_ids,
            "train_rows": host.items, "train_cols": host.users,
            "train_values": host.values, "shape": np.asarray(data.shape),
            "scale": np.asarray([data.scale.low, data.scale.high,
                                 data.scale.step])}
  if data.item_titles is not None:
    arrays["item_titles"] = np.asarray(data.item_titles, str)
  for split, ratings in (("valid", data.valid), ("test", data.test)):
    if ratings is not None:
      host = ratings.to_host()
      arrays.update({f"{split}_rows": host.items, f"{split}_cols": host.users,
                     f"{split}_values": host.values})
  return arrays


def start_arrays(start: Optional[optim.EpochStart]) -> dict:
  """The loss and gradient an epoch ended at (``next_value``,
  ``next_grad/<i>``), for a checkpoint to resume from exactly."""
  if start is None:
    return {}
  return {"next_value": np.asarray(start.value),
          **{f"next_grad/{i}": np.asarray(g)
             for i, g in enumerate(jax.tree.leaves(start.grad))}}


def start_from_arrays(arrays: dict, tree, step_scale
                      ) -> Optional[optim.EpochStart]:
  """The :class:`~glocal_jax.optim.EpochStart` that :func:`start_arrays`
  stored, shaped like ``tree`` (the phase's parameters); None when the
  checkpoint has none (older, or written at no epoch's end)."""
  if "next_value" not in arrays:
    return None
  leaves, treedef = jax.tree.flatten(tree)
  grads = [arrays.get(f"next_grad/{i}") for i in range(len(leaves))]
  if any(g is None or g.shape != np.shape(x) for g, x in zip(grads, leaves)):
    return None
  value = np.asarray(arrays["next_value"], np.float32)
  scale = np.broadcast_to(np.asarray(
      0.0 if step_scale is None else step_scale, np.float32), value.shape)
  return optim.EpochStart(value, jax.tree.unflatten(
      treedef, [jnp.asarray(g) for g in grads]), np.False_, scale)


def resume_from(checkpoint_dir: str, config: GLocalKConfig, seed: int,
                data_print: dict, log: Callable[[str], None] = say
                ) -> Optional[checkpoint.Checkpoint]:
  """The checkpoint to resume from, after checking it fits this run.

  Returns None (and says so) when ``checkpoint_dir`` holds none.

  A checkpoint of a finished (or unfinished) run resumes with more epochs
  than it was written with: more of the phase it is in, or any number of a
  phase it has not started.

  Raises:
    ValueError: the checkpoint was written with another config or seed (the
      message names each field that differs), or on other data (the
      message names both), or every file is damaged.
  """
  if not checkpoint.exists(checkpoint_dir):
    log(f"No checkpoint in {checkpoint_dir}; starting from scratch.")
    return None
  ckpt = checkpoint.load(checkpoint_dir)
  for problem in ckpt.damaged:
    log(f"{problem}; resuming from {ckpt.path} instead.")
  written_config = ckpt.meta["config"]
  phase, epoch = ckpt.meta["phase"], ckpt.meta["epoch"]
  # A run can go on for more epochs: of the phase it is in, or of a phase
  # not started yet.
  extends = {"pretrain_epochs": phase == "pretrain"
                                and config.pretrain_epochs >= epoch,
             "finetune_epochs": phase == "pretrain"
                                or config.finetune_epochs >= epoch}
  differ = [f"{k}: {written_config.get(k)!r} in the checkpoint, {v!r} now"
            for k, v in config.to_dict().items()
            if written_config.get(k) != (list(v) if isinstance(v, tuple)
                                         else v) and not extends.get(k)]
  if ckpt.meta["seed"] != seed:
    differ.append(f"seed: {ckpt.meta['seed']} in the checkpoint, {seed} now")
  if differ:
    raise ValueError(
        f"The checkpoint in {checkpoint_dir} was written with another "
        f"configuration ({'; '.join(differ)}); use the same flags or "
        "another folder.")
  written = ckpt.meta.get("data")
  if written != data_print:
    describe = lambda d: ("unknown data (an older checkpoint)" if d is None
                          else f"{d['name']}, {d['shape'][0]} x "
                          f"{d['shape'][1]}, {d['ratings']} ratings, sha256 "
                          f"{d['sha256'][:12]}")
    raise ValueError(
        f"The checkpoint in {checkpoint_dir} was trained on "
        f"{describe(written)}, not on this run's {describe(data_print)}; "
        "use the same data or another folder.")
  return ckpt


class _Start(NamedTuple):
  """Where :func:`fit` starts: from scratch, or from a checkpoint."""
  params: Optional[dict]
  key: jax.Array
  phase_epoch: tuple[str, int]
  history: list[dict]
  seconds_before: float
  step_scale: Optional[float]
  epoch_start: Optional[optim.EpochStart]


def _starting_point(ckpt: Optional[checkpoint.Checkpoint],
                    seed: int) -> _Start:
  """Where :func:`fit` starts: from ``ckpt``, else from scratch."""
  if ckpt is None:
    return _Start(None, jax.random.PRNGKey(seed), ("pretrain", 0), [], 0.0,
                  None, None)
  history = ckpt.meta["history"]
  start = (ckpt.meta["phase"], ckpt.meta["epoch"])
  # The curvature scale the next epoch of the phase starts from, and
  # (checkpoints since it was kept) its loss and gradient.
  step_scale = history[-1].get("step_scale") if history else None
  epoch_start = start_from_arrays(ckpt.arrays, training.phase_tree(
      start[0], ckpt.params), step_scale)
  return _Start(ckpt.params, ckpt.key, start, history, ckpt.meta["seconds"],
                step_scale, epoch_start)


def _evaluating_callback(history: list[dict], config: GLocalKConfig,
                         model_data: RatingData, train_data: TrainingData,
                         cold_fallback: bool, report: Callable[[], None],
                         after: Optional[Callable] = None,
                         **options) -> training.Callback:
  """The :func:`glocal_jax.training.train` callback of the fits: each
  epoch's record, with its :func:`evaluate` metrics (``options`` go there)
  and their time, appended to ``history``; then ``report()`` (a progress
  line from ``history``) and ``after(record, params)``."""
  def callback(record: training.EpochRecord, params) -> dict:
    tic = time.perf_counter()
    metrics = evaluate(config, params, model_data, train_data, record.phase,
                       cold_fallback, **options)
    history.append({**record.to_dict(), "metrics": metrics,
                    "evaluation_seconds": time.perf_counter() - tic})
    report()
    if after is not None:
      after(record, params)
    return metrics
  return callback


def _per_run(history: list[dict], count: int, means: dict,
             scale: RatingScale) -> list[tuple[list[dict], dict, list[str]]]:
  """Of a batched fit's ``history``: each of its ``count`` runs' history,
  :func:`summarise` and :func:`diagnose` warnings."""
  out = []
  for i in range(count):
    view = _seed_view(history, i)
    summary = summarise(view)
    out.append((view, summary, diagnose(summary, view, means, scale)))
  return out


def fit(config: GLocalKConfig, data: RatingData, seed: int, *,
        checkpoint_dir: Optional[str] = None, resume: bool = False,
        stop_after: Optional[int] = None,
        log: Callable[[str], None] = say,
        epoch_fns: Optional[dict] = None,
        mesh: Optional[jax.sharding.Mesh] = None,
        cold_fallback: bool = True) -> dict:
  """Trains, evaluates every epoch, and summarises one run.

  The model trains on the ratings mapped onto its own scale
  (:func:`model_ratings`); every metric is on the data's scale, over the
  whole test set (see :func:`evaluate` for ``cold_fallback``).

  Args:
    config: hyper-parameters and schedule.
    data: train/test (and optional validation) ratings.
    seed: seeds the parameter initialisation (``jax.random.PRNGKey(seed)``).
    checkpoint_dir: if set, a checkpoint is written after every epoch, on
      a background thread while the next epoch runs (all are written when
      fit returns or raises); with a validation split, also one of the
      selected epoch so far, in ``checkpoint_dir/selected``.
    resume: continue from the checkpoint in ``checkpoint_dir`` (its config,
      seed and training data must match).
    stop_after: stop after this many epochs in this call (a later call with
      ``resume=True`` continues).
    log: where the progress lines go.
    epoch_fns: compiled epochs to reuse (see
      :func:`glocal_jax.training.make_epoch_fns`).
    mesh: split the items over this mesh's devices
      (:func:`glocal_jax.sharding.device_mesh`). With several processes
      (``jax.distributed``), only process 0 logs and writes checkpoints.
    cold_fallback: predict the test pairs of users or items without a
      training rating by :func:`~glocal_jax.baselines.fallback_predictions`
      (False: by the model, as the authors' code does).

  Returns:
    JSON-able dict: ``dataset``, ``seed``, ``config``, ``device``, ``plan``,
    ``data`` (its fingerprint and :func:`evaluated_counts`),
    ``cold_fallback``, ``mean_predictors`` (:func:`mean_predictor_rmse`),
    ``warnings`` (:func:`diagnose`, also logged), ``seconds`` (wall time
    over all resumed calls) split into ``train_seconds``,
    ``evaluation_seconds``,
    ``compile_seconds`` and ``prepare_seconds``, ``history``, ``best``,
    ``final`` and, with a validation split, ``selected``; ``complete`` says
    whether the schedule ran to its end.
  """
  # One sequence (prepare, resume, train with checkpoints, summarise) whose
  # steps share a dozen local values: split into helpers, each would take
  # most of them as arguments.
  if data.train.count() == 0:
    raise ValueError(f"{data.name} has no training ratings: nothing to "
                     "train on.")
  if jax.process_index() != 0:
    log, checkpoint_dir = (lambda _: None), (checkpoint_dir if resume
                                             else None)
  tic = time.perf_counter()
  model_data = oriented(data, config)
  memory_bytes = plan_lib.device_memory_bytes()  # read once, recorded
  train_data = training.prepare(config, model_ratings(model_data), mesh=mesh,
                                memory_bytes=memory_bytes)
  prepare_seconds = time.perf_counter() - tic
  devices = 1 if mesh is None else mesh.size
  log(f"prepared the ratings as {train_data.plan.name} in "
      f"{prepare_seconds:.1f}s" + (f", items split over {devices} devices"
                                   if devices > 1 else ""))
  data_print = fingerprint(data)
  if resume and not checkpoint_dir:
    raise ValueError("resume needs a checkpoint directory.")
  ckpt = (resume_from(checkpoint_dir, config, seed, data_print, log)
          if resume else None)
  params, key, start, history, seconds_before, step_scale, epoch_start = (
      _starting_point(ckpt, seed))
  if ckpt is not None:
    log(f"Resuming after {start[0]} epoch {start[1]}.")
  arrays = checkpoint_arrays(data) if checkpoint_dir else None
  ratio = flop_ratio(config, train_data, data.train.count())
  means = mean_predictor_rmse(data)

  def save(record: training.EpochRecord, params) -> None:
    # The history and the mean predictors: what diagnose needs to say what
    # is wrong with a checkpoint's model (TrainedModel.warnings).
    meta = {"config": config.to_dict(), "seed": seed, "data": data_print,
            "cold_fallback": cold_fallback, "phase": record.phase,
            "epoch": record.epoch, "history": history,
            "mean_predictors": means,
            "seconds": seconds_before + time.perf_counter() - tic}
    writer.save(checkpoint_dir, params, key, meta,
                arrays={**arrays, **start_arrays(record.next_start)})
    valid = [h["metrics"]["valid_rmse"] for h in history
             if "valid_rmse" in h["metrics"]]
    if valid and valid[-1] <= min(valid):
      # The honest protocol's model so far: what load_model gives.
      writer.save(os.path.join(checkpoint_dir, SELECTED), params, key, meta,
                  arrays=arrays)

  callback = _evaluating_callback(
      history, config, model_data, train_data, cold_fallback,
      lambda: log(epoch_line(history[-1], time.perf_counter() - tic,
                             eta_seconds(history, config, ratio))),
      after=save if checkpoint_dir and jax.process_index() == 0 else None)

  # The next epoch runs while a checkpoint is written; the last is written
  # before fit returns or raises.
  with checkpoint.Writer() as writer:
    training.train(config, train_data, key, params=params, start=start,
                   callback=callback, epoch_fns=epoch_fns,
                   max_epochs=stop_after, step_scale=step_scale,
                   epoch_start=epoch_start)
  total = lambda name: float(sum(h.get(name, 0.0) for h in history))
  summary = summarise(history)
  warnings = diagnose(summary, history, means, data.scale)
  for warning in warnings:
    log(f"warning: {warning}")
  return {"dataset": data.name, "seed": seed, "config": config.to_dict(),
          "device": device_info(), "devices": devices,
          "plan": {**train_data.plan.to_dict(),
                   "device_memory_bytes": memory_bytes},
          "data": {**data_print, **evaluated_counts(data)},
          "cold_fallback": cold_fallback, "mean_predictors": means,
          "warnings": warnings,
          "seconds": seconds_before + time.perf_counter() - tic,
          "train_seconds": total("seconds"),
          "evaluation_seconds": total("evaluation_seconds"),
          "compile_seconds": total("compile_seconds"),
          "prepare_seconds": prepare_seconds,
          "complete": len(history) == len(training.schedule(config)),
          "history": history, **summary}


def _seed_view(history: list[dict], index: Optional[int]) -> list[dict]:
  """The history of one seed (``index``) or of the ensemble (None)."""
  view = []
  for h in history:
    m = h["metrics"]
    if index is None:
      picked = {k[len("ensemble_"):]: v for k, v in m.items()
                if k.startswith("ensemble_")}
    else:
      picked = {k: v[index] for k, v in m.items()
                if not k.startswith("ensemble_")}
    view.append({**h, "metrics": picked})
  return view


def fit_seeds(config: GLocalKConfig, data: RatingData, seeds: list[int], *,
              log: Callable[[str], None] = say,
              epoch_fns: Optional[dict] = None,
              params=None, start: tuple[str, int] = ("pretrain", 0),
              cold_fallback: bool = True) -> dict:
  """Trains ``len(seeds)`` seeds as one compiled program.

  Seed ``s`` starts from ``jax.random.PRNGKey(s)``, as :func:`fit` does.
  By default the seeds run one after the other inside the program
  (``lax.map``); ``epoch_fns`` may come from ``make_epoch_fns(config,
  batched=True, seed_batching="vmap")`` to vectorise them instead (see
  docs/optimizer.md). ``params`` (stacked over seeds)
  and ``start`` continue a schedule, e.g. from :func:`pretrain_snapshots`;
  the history then holds the epochs run here only. Scales, the whole test
  set and ``cold_fallback`` as in :func:`fit`.

  Returns:
    JSON-able dict: ``seeds``, ``config``, ``device``, ``seconds``,
    ``history`` (per-seed lists and ensemble values per epoch),
    ``per_seed`` (each seed's :func:`summarise`), ``mean`` / ``std`` over
    seeds of each summary value, and ``ensemble`` (:func:`summarise` of the
    mean clipped prediction), ``data`` (:func:`evaluated_counts`),
    ``mean_predictors`` and ``warnings`` (each seed's :func:`diagnose`,
    also logged).
  """
  history = []
  tic = time.perf_counter()
  model_data = oriented(data, config)
  train_data = training.prepare(config, model_ratings(model_data),
                                copies=len(seeds))
  ratio = flop_ratio(config, train_data, data.train.count())

  def report() -> None:
    h = history[-1]
    log(f"{h['phase']} epoch {h['epoch']}: test RMSE per seed "
        f"{np.round(h['metrics']['test_rmse'], 4).tolist()} ensemble "
        f"{h['metrics']['ensemble_test_rmse']:.4f} | "
        f"{time.perf_counter() - tic:.1f}s elapsed, ETA "
        f"{eta_seconds(history, config, ratio):.0f}s")

  callback = _evaluating_callback(history, config, model_data, train_data,
                                  cold_fallback, report)
  epoch_fns = epoch_fns or training.make_epoch_fns(config, batched=True)
  training.train(config, train_data, seed_keys(seeds), params=params,
                 start=start, callback=callback, epoch_fns=epoch_fns)
  means = mean_predictor_rmse(data)
  runs = _per_run(history, len(seeds), means, data.scale)
  per_seed = [summary for _, summary, _ in runs]
  warnings = [f"seed {seed}: {w}" for seed, (_, _, found) in zip(seeds, runs)
              for w in found]
  for warning in warnings:
    log(f"warning: {warning}")
  stats = {}
  for name in ("mean", "std"):
    reduce = np.mean if name == "mean" else np.std
    stats[name] = {
        block: {k: float(reduce([np.nan if s[block][k] is None else
                                 s[block][k] for s in per_seed]))
                for k in per_seed[0][block]
                if not k.endswith("epoch") and k != "phase"}
        for block in ("best", "final", "selected") if block in per_seed[0]}
  return {"dataset": data.name, "seeds": list(seeds),
          "config": config.to_dict(), "device": device_info(),
          "plan": train_data.plan.to_dict(), "data": evaluated_counts(data),
          "cold_fallback": cold_fallback, "mean_predictors": means,
          "warnings": warnings,
          "seconds": time.perf_counter() - tic, "history": history,
          "per_seed": per_seed, **stats,
          "ensemble": summarise(_seed_view(history, None))}


def fit_configs(configs: list[GLocalKConfig], data: RatingData, seed: int,
                *, log: Callable[[str], None] = say,
                seed_batching: str = "map",
                mesh: Optional[jax.sharding.Mesh] = None,
                cold_fallback: bool = True) -> dict:
  """Trains configurations that differ only in their scalar
  hyper-parameters (:data:`glocal_jax.training.HYPER_FIELDS`: ``lambda_2``,
  ``lambda_s``, ``dot_scale``) as one compiled program over a
  configuration axis, each from the initialisation :func:`fit` draws for
  ``seed``.

  The hyper-parameters are traced arguments of the losses
  (``make_epoch_fns(..., hyper_axis=True)``), so one compilation serves
  every configuration; ``seed_batching`` runs them one after the other
  inside the program (``"map"``), vectorised (``"vmap"``), or spread over
  ``mesh``'s devices (``"devices"``, a mesh with axis ``"seeds"``:
  :func:`glocal_jax.sharding.seeds_on_devices`; the devices may belong to
  several processes). Metrics, scales, the whole test set and
  ``cold_fallback`` as in :func:`fit`.

  Returns:
    JSON-able ``{"runs", "seconds", "compile_seconds", "device", "plan",
    "data", "mean_predictors"}``; ``runs[i]`` is ``configs[i]``'s
    ``config``, :func:`summarise` (``best``, ``final``, ``selected``),
    ``warnings`` (:func:`diagnose`) and ``history``.

  Raises:
    ValueError: the configurations differ in anything else (hidden sizes,
      orientation, schedule, ...: a loop of :func:`fit` trains those).
  """
  base = configs[0]
  for config in configs[1:]:
    other = [f for f, v in config.to_dict().items()
             if f not in training.HYPER_FIELDS and v != base.to_dict()[f]]
    if other:
      raise ValueError(f"fit_configs trains configurations that differ in "
                       f"{training.HYPER_FIELDS} only; these also differ in "
                       f"{other}.")
  hyper = training.hyper_of(configs)
  tic = time.perf_counter()
  history = []
  model_data = oriented(data, base)
  train_data = training.prepare(base, model_ratings(model_data),
                                copies=len(configs))
  one = training.init_params(base, jax.random.PRNGKey(seed),
                             *model_data.shape)
  params = jax.tree.map(
      lambda x: jnp.broadcast_to(x, (len(configs),) + x.shape), one)

  def report() -> None:
    h = history[-1]
    split = "valid" if "valid_rmse" in h["metrics"] else "test"
    rmse = np.round(h["metrics"][f"{split}_rmse"], 4).tolist()
    log(f"{h['phase']} epoch {h['epoch']}: {split} RMSE per configuration "
        f"{rmse} | {time.perf_counter() - tic:.1f}s elapsed")

  callback = _evaluating_callback(history, base, model_data, train_data,
                                  cold_fallback, report,
                                  dot_scale=hyper["dot_scale"])
  training.train(base, train_data, params=params, callback=callback,
                 epoch_fns=training.make_epoch_fns(
                     base, batched=True, seed_batching=seed_batching,
                     mesh=mesh, hyper_axis=True), hyper=hyper)
  means = mean_predictor_rmse(data)
  runs = [{"config": config.to_dict(), **summary, "warnings": warnings,
           "history": view} for config, (view, summary, warnings) in
          zip(configs, _per_run(history, len(configs), means, data.scale))]
  return {"runs": runs, "seconds": time.perf_counter() - tic,
          "compile_seconds": float(sum(h["compile_seconds"]
                                       for h in history)),
          "device": device_info(), "plan": train_data.plan.to_dict(),
          "data": evaluated_counts(data), "mean_predictors": means}


def init_seeds(config: GLocalKConfig, seeds: list[int],
               shape: tuple[int, int]):
  """Initial parameters of ``seeds`` stacked along a leading axis, as
  :func:`fit_seeds` draws them, for an ``(items, users)`` matrix."""
  return jax.vmap(lambda k: training.init_params(config, k, *shape))(
      seed_keys(seeds))


def pretrain_snapshots(config: GLocalKConfig, data: RatingData,
                       seeds: list[int], epochs: list[int], *,
                       log: Callable[[str], None] = say,
                       epoch_fns: Optional[dict] = None) -> dict:
  """Stacked parameters after each of ``epochs`` pre-training epochs.

  One pre-training run of ``max(epochs)`` epochs (seeds as in
  :func:`fit_seeds`) serves every entry: training is deterministic, so
  ``fit_seeds(config.replace(pretrain_epochs=e), ..., params=snapshot,
  start=("pretrain", e))`` equals a run with ``e`` pre-training epochs from
  scratch, without repeating the shared epochs (paper Figure 3).

  Returns:
    ``{e: (params stacked over seeds, pre-training seconds to epoch e)}``;
    ``e = 0`` is the initialisation.
  """
  params = init_seeds(config, seeds, oriented(data, config).shape)
  wanted = set(epochs)
  snapshots = {0: (params, 0.0)} if 0 in wanted else {}
  if max(epochs) == 0:
    return snapshots
  tic = time.perf_counter()

  def callback(record: training.EpochRecord, params) -> None:
    if record.epoch in wanted:
      snapshots[record.epoch] = (params, time.perf_counter() - tic)
      log(f"pretrain epoch {record.epoch}: snapshot | "
          f"{time.perf_counter() - tic:.1f}s elapsed")

  schedule = config.replace(pretrain_epochs=max(epochs), finetune_epochs=0)
  training.train(schedule, training.prepare(
      config, model_ratings(oriented(data, config)), len(seeds)),
                 params=params, callback=callback, epoch_fns=epoch_fns or
                 training.make_epoch_fns(config, batched=True))
  return snapshots
