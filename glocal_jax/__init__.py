"""glocal_jax: GLocal-K (Han et al., CIKM 2021) in JAX.

Pure functions over plain parameter pytrees:

* kernels: :func:`local_kernel` (Eq. 2), :func:`kernelised_weight` (Eq. 3),
  :func:`item_average_pooling` (Eq. 4), :func:`global_kernel` (Eq. 5),
  :func:`global_conv` (Eq. 6);
* model -- the dense reference on ``(m, n)`` matrices and masks
  (:mod:`glocal_jax.model`): :func:`init_params` (from sizes),
  :func:`kernel_layer`, :func:`autoencoder` (Eq. 1), :func:`encode`,
  :func:`decode`, :func:`pooled_predictions`, :func:`global_kernel_ratings`,
  :func:`pretrain_loss`, :func:`finetune_loss` (these two names at the top
  level are the dense ones);
* the ratings pytree :class:`Ratings` (:func:`from_triplets`,
  :func:`from_dense`) and the same losses on it, with memory that grows
  with the ratings: ``glocal_jax.representations.pretrain_loss`` and
  ``finetune_loss`` take the prepared data of :func:`prepare` (dense,
  blocked and sparse formulations);
* metrics on rating triplets: :func:`rmse`, :func:`mae`, :func:`ndcg`,
  :func:`evaluate` (clipped to the bounds given, e.g. the data's scale);
* baselines: :func:`mean_predictions` (global, item or user mean);
* from a data set to a trained model: :func:`fit` (a config, a
  :class:`~glocal_jax.data.RatingData` and a key) returns a
  :class:`TrainedModel` -- orientation, rating scale, cold fallback,
  selection on validation and diagnosis done -- with ``predict``,
  ``recommend``, ``evaluate``, ``warnings`` and ``save``;
  :func:`load_model` reads it back (or a run's checkpoint);
* the schedule underneath, on the model's matrix and scale: :func:`train`
  (a callback after every epoch; True stops), :func:`prepare` (a config
  and ratings), :func:`predict` (after a phase, ``"pretrain"`` or
  ``"finetune"``), :class:`GLocalKConfig`, :func:`preset`; the epochs for
  any loss over any float pytree: :func:`optax_lbfgs_epoch` (the default
  driver), :func:`jaxopt_lbfgsb_epoch` (with box bounds),
  :func:`scipy_lbfgsb_epoch`, :class:`EpochStart`, :class:`EpochStats`;
  :func:`top_k_unrated`.

The local kernel (Eq. 2), the pooling of Eq. 4 and the aggregation of
Eq. 5 are fields of the config (``local_kernel=``, ``pooling=``,
``aggregation=``) and arguments of the model and the representations: any
function of their signatures replaces the paper's. What is computed, with
the details of the authors' code that the paper leaves open, is in
``docs/model.md``; ``docs/research.md`` shows the pieces replaced. Data
loaders live in :mod:`glocal_jax.data`, the scripts' runs (both protocols,
seeds trained together, checkpoints) in :mod:`glocal_jax.runs`, tuning in
:mod:`glocal_jax.tuning`.
"""

from glocal_jax.baselines import mean_predictions
from glocal_jax.config import PRESETS
from glocal_jax.config import GLocalKConfig
from glocal_jax.config import preset
from glocal_jax.epochs import make_epoch_fns
from glocal_jax.fitting import fit
from glocal_jax.kernels import global_conv
from glocal_jax.kernels import global_kernel
from glocal_jax.kernels import item_average_pooling
from glocal_jax.kernels import kernelised_weight
from glocal_jax.kernels import local_kernel
from glocal_jax.kernels import pooling_fn
from glocal_jax.matrix import predict
from glocal_jax.matrix import prepare
from glocal_jax.metrics import evaluate
from glocal_jax.metrics import mae
from glocal_jax.metrics import ndcg
from glocal_jax.metrics import rmse
from glocal_jax.model import autoencoder
from glocal_jax.model import decode
from glocal_jax.model import encode
from glocal_jax.model import finetune_loss
from glocal_jax.model import finetune_predictions
from glocal_jax.model import global_kernel_ratings
from glocal_jax.model import init_layer
from glocal_jax.model import init_params
from glocal_jax.model import item_summaries
from glocal_jax.model import kernel_layer
from glocal_jax.model import kernelised_layers
from glocal_jax.model import masked_squared_error
from glocal_jax.model import pooled_predictions
from glocal_jax.model import pretrain_loss
from glocal_jax.optim import EpochStart
from glocal_jax.optim import EpochStats
from glocal_jax.optim import jaxopt_lbfgsb_epoch
from glocal_jax.optim import lbfgsb_epoch
from glocal_jax.optim import optax_lbfgs_epoch
from glocal_jax.optim import scipy_lbfgsb_epoch
from glocal_jax.plan import Plan
from glocal_jax.ratings import Ratings
from glocal_jax.ratings import from_dense
from glocal_jax.ratings import from_triplets
from glocal_jax.recommend import top_k_unrated
from glocal_jax.representations import TrainingData
from glocal_jax.trained import TrainedModel
from glocal_jax.trained import load_model
from glocal_jax.training import EpochRecord
from glocal_jax.training import NonFiniteError
from glocal_jax.training import TrainResult
from glocal_jax.training import train

__version__ = "0.1.0"

__all__ = [
    # kernels (Eqs. 2-6)
    "local_kernel", "kernelised_weight", "item_average_pooling",
    "pooling_fn", "global_kernel", "global_conv",
    # the dense reference model
    "init_params", "init_layer", "kernel_layer", "kernelised_layers",
    "autoencoder", "encode", "decode", "pooled_predictions", "item_summaries",
    "global_kernel_ratings", "finetune_predictions", "masked_squared_error",
    "pretrain_loss", "finetune_loss",
    # ratings, metrics, baselines
    "Ratings", "from_triplets", "from_dense", "rmse", "mae", "ndcg",
    "evaluate", "mean_predictions",
    # from data to a trained model
    "fit", "load_model", "TrainedModel",
    # configuration and training
    "GLocalKConfig", "PRESETS", "preset", "Plan", "TrainingData", "prepare",
    "train", "predict", "make_epoch_fns", "EpochRecord", "TrainResult",
    "NonFiniteError",
    # L-BFGS epochs
    "optax_lbfgs_epoch", "jaxopt_lbfgsb_epoch", "scipy_lbfgsb_epoch",
    "lbfgsb_epoch", "EpochStart", "EpochStats",
    # using a model
    "top_k_unrated",
]
