"""The runs of ``experiments/``: :func:`glocal_jax.fit` with progress,
checkpoints and resume, seeds and configurations trained together.

* :mod:`glocal_jax.runs.drivers` -- :func:`evaluated_run` (one run, both
  protocols, checkpoints, resume), :func:`fit_seeds` (N seeds as one
  compiled program: mean, std and ensemble), :func:`fit_configs` (scalar
  hyper-parameters over a configuration axis), :func:`pretrain_snapshots`;
* :mod:`glocal_jax.runs.results` -- their typed results
  (:class:`RunResult`, :class:`SeedsResult`, :class:`ConfigsResult`, with
  ``to_dict`` for the JSON files);
* :mod:`glocal_jax.runs.state` -- a run's checkpoint: writing it every
  epoch, reading it back to resume exactly;
* :mod:`glocal_jax.runs.progress` -- the epoch lines, the time left.
"""

from glocal_jax.runs.drivers import evaluated_run
from glocal_jax.runs.drivers import fit_configs
from glocal_jax.runs.drivers import fit_seeds
from glocal_jax.runs.drivers import init_seeds
from glocal_jax.runs.drivers import pretrain_snapshots
from glocal_jax.runs.drivers import seed_keys
from glocal_jax.runs.progress import device_info
from glocal_jax.runs.progress import say
from glocal_jax.runs.results import ConfigsResult
from glocal_jax.runs.results import ModelRun
from glocal_jax.runs.results import RunResult
from glocal_jax.runs.results import SeedsResult
from glocal_jax.runs.state import fingerprint
