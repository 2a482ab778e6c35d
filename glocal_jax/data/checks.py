"""The checks every loader makes and the id maps: raw triplets (with their
lines) to a validated :class:`~glocal_jax.data.RatingData`."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from glocal_jax.data.container import DataFormatError
from glocal_jax.data.container import RatingData
from glocal_jax.data.container import RatingScale
from glocal_jax.data.reading import RawRatings
from glocal_jax.data.sources import PUBLISHED
from glocal_jax.ratings import Ratings


def validate(data: RatingData, scale: Optional[RatingScale] = None
             ) -> RatingData:
  """Checks a loaded data set; the same rules for every loader.

  Refuses: no training rating; a rating off ``scale``; a cell rated in two
  splits (train, test, validation: a leaked test rating). Returns ``data``
  with a note when its size differs from the published release's (e.g. a
  truncated download).

  Raises:
    DataFormatError: naming the split and the first offending entry.
  """
  if data.train.count() == 0:
    raise DataFormatError(f"{data.name}: no training ratings.")
  splits = {"train": data.train, "test": data.test}
  if data.valid is not None:
    splits["validation"] = data.valid
  n = data.shape[1]
  keys = {}
  for name, split in splits.items():
    host = split.to_host()
    real = host.values > 0
    if scale is not None:
      bad = scale.off_scale(host.values[real])
      if bad.size:
        raise DataFormatError(
            f"{data.name} {name}: rating {host.values[real][bad[0]]:g} is "
            f"not on the scale {scale.describe()} ({bad.size} such "
            "ratings).")
    keys[name] = host.items[real].astype(np.int64) * n + host.users[real]
  names = list(keys)
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      both, _ = shared_keys(keys[a], keys[b])
      if both.size:
        item, user = divmod(int(keys[a][both[0]]), n)
        raise DataFormatError(
            f"{data.name}: {both.size} cell(s) rated in both {a} and {b}, "
            f"e.g. item {data.item_ids[item]} by user {data.user_ids[user]} "
            "(a test rating would leak into training).")
  cold = cold_note(data)
  if cold:
    data = dataclasses.replace(data, notes=data.notes + (cold,))
  published = PUBLISHED.get(data.name)
  if published is not None:
    count = sum(s.count() for s in splits.values())
    found = (count, data.shape[1], data.shape[0])
    if found != published:
      note = (f"{data.name} has {found[0]} ratings, {found[1]} users and "
              f"{found[2]} items; the published release has {published[0]}, "
              f"{published[1]} and {published[2]}: a partial or modified "
              "file?")
      data = dataclasses.replace(data, notes=data.notes + (note,))
  return data


def cold_note(data: RatingData) -> str:
  """A note counting the test ratings of users or items without a training
  rating (empty when there are none): they are evaluated, predicted by
  :func:`glocal_jax.baselines.fallback_predictions`."""
  train, test = data.train.to_host(), data.test.to_host()
  real = test.values > 0
  users = np.zeros(data.shape[1], bool)
  users[train.users[train.values > 0]] = True
  items = np.zeros(data.shape[0], bool)
  items[train.items[train.values > 0]] = True
  cold_user = real & ~users[test.users]
  cold_item = real & ~items[test.items]
  if not (cold_user.any() or cold_item.any()):
    return ""
  return (f"{int(cold_user.sum())} test rating(s) by "
          f"{np.unique(test.users[cold_user]).size} user(s) and "
          f"{int(cold_item.sum())} rating(s) of "
          f"{np.unique(test.items[cold_item]).size} item(s) without a "
          "training rating are evaluated, predicted by "
          "the fallback (the item's training mean, else the user's, else "
          "the global mean).")


def check_raw(raw: RawRatings, scale: Optional[RatingScale],
               positive_ids: bool, duplicates: str = "error"
               ) -> tuple[RawRatings, list[str]]:
  """Scale, id and duplicate checks with line numbers; returns the kept
  ratings and notes (duplicates dropped with ``duplicates="last"``)."""
  if scale is not None:
    bad = scale.off_scale(raw.values)
    if bad.size:
      i = bad[0]
      raise DataFormatError(
          f"{raw.path}, line {raw.lines[i]}: rating {raw.values[i]:g} is not "
          f"on the scale {scale.describe()} ({bad.size} such ratings).")
  if positive_ids:
    for name, ids in (("user", raw.users), ("item", raw.items)):
      bad = np.flatnonzero(ids <= 0)
      if bad.size:
        raise DataFormatError(f"{raw.path}, line {raw.lines[bad[0]]}: ids "
                              f"must be positive, got {name} {ids[bad[0]]}.")
  order = _by_cell_then_line(raw)
  same = np.flatnonzero((raw.items[order][1:] == raw.items[order][:-1])
                        & (raw.users[order][1:] == raw.users[order][:-1]))
  if same.size == 0:
    return raw, []
  if duplicates == "error":
    first, second = order[same[0]], order[same[0] + 1]
    raise DataFormatError(
        f"{raw.path}, line {raw.lines[second]}: duplicate rating of item "
        f"{show_id(raw.items[first])} by user {show_id(raw.users[first])} "
        f"(first at line {raw.lines[first]}); {same.size} duplicate(s) in "
        "all. Pass "
        "duplicates='last' (--duplicates=last) to keep the last of each.")
  if duplicates != "last":
    raise ValueError(f"duplicates must be 'error' or 'last', got "
                     f"{duplicates!r}.")
  keep = np.ones(raw.values.size, bool)
  keep[order[same]] = False  # of each run of equal pairs, the last stays
  return raw.take(np.flatnonzero(keep)), [
      f"{raw.path}: {same.size} pair(s) rated more than once (first: item "
      f"{show_id(raw.items[order[same[0]]])} by user "
      f"{show_id(raw.users[order[same[0]]])}, line "
      f"{raw.lines[order[same[0] + 1]]}); the last rating of each is kept "
      "(duplicates='error', --duplicates=error, refuses such a file)."]


def _by_cell_then_line(raw: RawRatings) -> np.ndarray:
  """The order of ``raw`` by item, user, then line: one stable int64 sort
  when the ids are non-negative integers whose cell key fits and the lines
  are in file order, else a three-key lexsort."""
  ints = raw.items.dtype.kind in "iu" and raw.users.dtype.kind in "iu"
  if ints and raw.items.size and min(raw.items.min(), raw.users.min()) >= 0:
    width = int(raw.users.max()) + 1
    if (int(raw.items.max()) + 1) * width < 2**62 and np.all(
        raw.lines[1:] > raw.lines[:-1]):
      return np.argsort(raw.items.astype(np.int64) * width + raw.users,
                        kind="stable")
  return np.lexsort((raw.lines, raw.users, raw.items))


def show_id(raw_id) -> str:
  return raw_id.decode("utf-8", "replace") if isinstance(raw_id, bytes) else (
      str(raw_id))


def shared_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Indices into ``a`` and into ``b`` of pairs of equal keys, one pair per
  key that both hold (duplicates within ``a`` or ``b`` alone do not count).

  One stable sort of both: in a run of equal keys, ``a``'s entries come
  first, so a key in both has an ``a`` entry next to a ``b`` entry.
  (``np.intersect1d`` first makes each side unique, several times slower
  on tens of millions of keys.)"""
  keys = np.concatenate([a, b])
  order = np.argsort(keys, kind="stable")
  ordered = keys[order]
  equal = np.flatnonzero(ordered[1:] == ordered[:-1])
  first, second = order[equal], order[equal + 1]
  cross = (first < a.size) & (second >= a.size)
  return first[cross], second[cross] - a.size


def map_ids(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
  """Sorted unique raw ids over ``parts`` and each part's indices into
  them (ids of mixed kinds are compared as text)."""
  if any(p.dtype.kind == "S" for p in parts):
    parts = [p if p.dtype.kind == "S" else p.astype("S") for p in parts]
    width = max(p.dtype.itemsize for p in parts)
    parts = [p.astype(f"S{width}") for p in parts]
  ids, inverse = np.unique(np.concatenate(parts), return_inverse=True)
  return ids, np.split(inverse, np.cumsum([p.size for p in parts])[:-1])


def build(name: str, parts: Sequence[RawRatings], scale: RatingScale,
           notes: Sequence[str] = ()) -> RatingData:
  """Train and test :class:`Ratings` of ``parts`` (train, test), ids mapped
  to 0..n-1 in sorted order of the raw ids over both; a cell in both
  parts is an error naming both lines."""
  user_ids, users = map_ids([p.users for p in parts])
  item_ids, items = map_ids([p.items for p in parts])
  n = user_ids.size
  keys = [it.astype(np.int64) * n + us for it, us in zip(items, users)]
  in_train, in_test = shared_keys(*keys)
  if in_train.size:
    i, j = in_train[0], in_test[0]
    raise DataFormatError(
        f"{parts[1].path}, line {parts[1].lines[j]}: item "
        f"{show_id(item_ids[items[1][j]])} by user "
        f"{show_id(user_ids[users[1][j]])} "
        f"is also in {parts[0].path}, line {parts[0].lines[i]} (a test rating "
        f"would leak into training); {in_train.size} such cell(s). To drop "
        "them from the test ratings: overlap='drop' (--overlap=drop).")
  shape = (item_ids.size, n)
  split = [Ratings(*sorted_triplets(it, us, p.values, key), shape)
           for it, us, p, key in zip(items, users, parts, keys)]
  return validate(RatingData(name, split[0], split[1], item_ids, user_ids,
                             notes=tuple(notes), scale=scale), scale)


def sorted_triplets(items, users, values, keys):
  """The triplets by item, then user; ``keys``: ``item * n_users + user``
  (one int64 sort instead of a two-key lexsort)."""
  order = np.argsort(keys, kind="stable")
  return (items[order].astype(np.int32), users[order].astype(np.int32),
          values[order].astype(np.float32))


def scale_of(values: np.ndarray) -> RatingScale:
  """The scale a file's ratings are on: their range, in steps of 1 or 0.5
  when they all are, else continuous."""
  low, high = float(values.min()), float(values.max())
  for step in (1.0, 0.5):
    steps = (values - low) / step
    if np.all(np.abs(steps - np.round(steps)) < 1e-6):
      return RatingScale(low, high, step)
  return RatingScale(low, high, 0.0)
