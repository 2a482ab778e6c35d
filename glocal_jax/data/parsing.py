"""Reading rating files: vectorised over the bytes, no loop per line.

:func:`read_table` reads delimited text (``user item rating ...`` rows, any
column order) into NumPy arrays: the whole file is one byte array, line and
field boundaries come from ``np.flatnonzero``, and numbers are assembled
digit by digit across all lines at once. A 20M-line ``ratings.csv`` takes
seconds and memory of a few bytes per byte of the file (docs/data.md).

Errors name the file and the line: a line with another number of fields, a
non-numeric rating, an id too long for an integer, a file in UTF-16. A UTF-8
byte-order mark is skipped; CRLF line ends and blank lines are accepted. A
file compressed with gzip or bzip2, or a zip archive of one file, is read
as its content (told by its first bytes, whatever its name).
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
from typing import Optional, Sequence
import zipfile

import numpy as np

DELIMITERS: tuple[str, ...] = ("::", "\t", ",", ";", " ")
_NL, _CR, _SPACE, _TAB, _QUOTE = 10, 13, 32, 9, 34
MAX_DIGITS = 18  # every 18-digit integer fits int64


class ParseError(ValueError):
  """A rating file is not in the expected format (names file and line)."""


@dataclasses.dataclass
class Table:
  """Columns read from a rating file.

  Attributes:
    columns: one array per requested column: int64 for integer ids,
      bytes (``np.bytes_``) for other ids, float64 for a numeric column.
    lines: ``(N,)`` 1-based line number of each row in the file.
    delimiter: the delimiter used.
    header: whether the first line was a header.
  """
  columns: list[np.ndarray]
  lines: np.ndarray
  delimiter: str
  header: bool


def _decompressed(data: bytes, path: str) -> bytes:
  """``data`` itself, or the content of a gzip, bzip2 or one-member zip
  file (told by its magic bytes)."""
  try:
    if data.startswith(b"\x1f\x8b"):
      return gzip.decompress(data)
    if data.startswith(b"BZh"):
      return bz2.decompress(data)
    if data.startswith(b"PK\x03\x04"):
      with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
          raise ParseError(
              f"{path}: a zip archive of {len(members)} files; ratings come "
              "from one file: unzip it and name the file.")
        return archive.read(members[0])
  except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
    raise ParseError(f"{path}: a damaged compressed file ({e}).") from None
  return data


def _check_encoding(data: bytes, path: str) -> bytes:
  if data.startswith(b"\xef\xbb\xbf"):
    return data[3:]
  if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
    raise ParseError(
        f"{path}: the file's encoding is UTF-16 (or it holds NUL bytes), not "
        "UTF-8/ASCII text; convert it, e.g. iconv -f UTF-16 -t UTF-8.")
  return data


def _line_text(buf: np.ndarray, start: int, end: int) -> str:
  return bytes(buf[start:min(end, start + 200)]).decode("utf-8", "replace")


def _split_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                           np.ndarray]:
  """Starts, ends (CR stripped) and 1-based numbers of the lines that are
  not blank (empty, or spaces and tabs only)."""
  if buf.size == 0:
    empty = np.zeros(0, np.int64)
    return empty, empty, empty
  newlines = np.flatnonzero(buf == _NL)
  starts = np.concatenate([[0], newlines + 1])
  ends = np.concatenate([newlines, [buf.size]])
  has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR)
  ends = ends - has_cr
  keep = ~_blank(buf, starts, ends)
  numbers = np.flatnonzero(keep) + 1
  return starts[keep], ends[keep], numbers


def _blank(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
           ) -> np.ndarray:
  """Per line: empty, or nothing but spaces, tabs and CRs. Only a line that
  begins with one of those can be blank and not empty; such lines are
  looked at a block of lines at a time, so that the running count of
  filled bytes spans one block's bytes, never the whole file's."""
  blank = ends <= starts
  lead = buf[np.minimum(starts, buf.size - 1)]
  maybe = ~blank & ((lead == _SPACE) | (lead == _TAB) | (lead == _CR))
  for i in range(0, starts.size, LINES_PER_BLOCK):
    lines = i + np.flatnonzero(maybe[i:i + LINES_PER_BLOCK])
    if lines.size == 0:
      continue
    lo, hi = int(starts[lines[0]]), int(ends[lines[-1]])
    part = buf[lo:hi]
    filled = np.concatenate([[0], np.cumsum(
        (part != _SPACE) & (part != _TAB) & (part != _CR))])
    blank[lines] = filled[ends[lines] - lo] == filled[starts[lines] - lo]
  return blank


def _read_lines(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                    np.ndarray]:
  """The file's bytes and :func:`_split_lines` of them; an empty file or
  one of blank lines is an error."""
  try:
    with open(path, "rb") as f:
      data = _check_encoding(_decompressed(f.read(), path), path)
  except IsADirectoryError:
    raise ParseError(f"{path} is a folder, not a ratings file.") from None
  except OSError as e:
    raise ParseError(f"{path}: cannot read it ({e.strerror or e}).") from None
  buf = np.frombuffer(data, np.uint8)
  starts, ends, numbers = _split_lines(buf)
  if starts.size == 0:
    raise ParseError(f"{path}: no ratings (the file is empty).")
  return buf, starts, ends, numbers


def _delimiter_spans(buf: np.ndarray, delimiter: str
                     ) -> tuple[np.ndarray, np.ndarray]:
  """``(begin, end)`` byte ranges of every delimiter occurrence, in order."""
  if delimiter == " ":  # runs of spaces and tabs
    blank = (buf == _SPACE) | (buf == _TAB)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], blank, [0]]).astype(
        np.int8)))
    return edges[::2], edges[1::2]
  code = np.frombuffer(delimiter.encode(), np.uint8)
  hits = buf[:buf.size - code.size + 1] == code[0]
  for k in range(1, code.size):
    hits &= buf[k:buf.size - code.size + 1 + k] == code[k]
  begin = np.flatnonzero(hits)
  if code.size > 1 and begin.size:  # drop overlapping matches (":::")
    keep = np.concatenate([[True], np.diff(begin) >= code.size])
    begin = begin[keep]
  return begin, begin + code.size


def _fields(buf, starts, ends, numbers, delimiter, path, shape=None):
  """``(field_starts, field_ends)``: ``(N, k)`` boundaries of each line's
  ``k`` fields; every line must have the same number of fields (``k`` and
  the line it comes from: ``shape``, else the first line's)."""
  begin, end = _delimiter_spans(buf, delimiter)
  first = np.searchsorted(begin, starts)
  count = np.searchsorted(begin, ends) - first
  k, source = shape or (int(count[0]) + 1, numbers[0])
  bad = np.flatnonzero(count != k - 1)
  if bad.size:
    i = bad[0]
    raise ParseError(
        f"{path}, line {numbers[i]}: expected {k} fields separated by "
        f"{delimiter!r} (as on line {source}), got {count[i] + 1}: "
        f"{_line_text(buf, starts[i], ends[i])!r}")
  index = first[:, None] + np.arange(k - 1)
  field_starts = np.concatenate([starts[:, None], end[index]], axis=1)
  field_ends = np.concatenate([begin[index], ends[:, None]], axis=1)
  # A field in double quotes ("u1","tt01","4.5") is read without them (a
  # quoted field holding the delimiter is not supported: the count above
  # refuses its line).
  quoted = ((field_ends - field_starts >= 2)
            & (buf[np.minimum(field_starts, buf.size - 1)] == _QUOTE)
            & (buf[np.maximum(field_ends - 1, 0)] == _QUOTE))
  return field_starts + quoted, field_ends - quoted


CHUNK = 1 << 20  # fields per vectorised step: bounds the (N, width) arrays


def _chunked(fn):
  """Applies ``fn(buf, starts, ends)`` to blocks of CHUNK fields."""
  def apply(buf, starts, ends):
    if starts.size <= CHUNK:
      return fn(buf, starts, ends)
    return np.concatenate([fn(buf, starts[i:i + CHUNK], ends[i:i + CHUNK])
                           for i in range(0, starts.size, CHUNK)])
  return apply


def _digits(buf, starts, ends, width):
  """``(N, width)`` bytes of each field, right-aligned, '0'-padded."""
  offsets = np.arange(width) - width
  index = ends[:, None] + offsets
  valid = index >= starts[:, None]
  return np.where(valid, buf[np.clip(index, 0, buf.size - 1)], ord("0"))


@_chunked
def _is_digits(buf, starts, ends) -> np.ndarray:
  """Per field: non-empty and all ASCII digits."""
  width = int(np.max(ends - starts, initial=0))
  if width == 0:
    return np.zeros(starts.size, bool)
  d = _digits(buf, starts, ends, width)
  return (ends > starts) & np.all((d >= 48) & (d <= 57), axis=1)


@_chunked
def _integers(buf, starts, ends) -> np.ndarray:
  width = int(np.max(ends - starts, initial=1))
  d = _digits(buf, starts, ends, width).astype(np.int64) - 48
  return d @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))


def _strings(buf, starts, ends) -> np.ndarray:
  """Fields as fixed-width ``np.bytes_`` (trailing padding is NUL)."""
  width = max(int(np.max(ends - starts, initial=1)), 1)
  return np.concatenate([_string_block(buf, starts[i:i + CHUNK],
                                       ends[i:i + CHUNK], width)
                         for i in range(0, starts.size, CHUNK)])


def _string_block(buf, starts, ends, width):
  index = starts[:, None] + np.arange(width)
  valid = index < ends[:, None]
  chars = np.where(valid, buf[np.clip(index, 0, buf.size - 1)], 0)
  return np.ascontiguousarray(chars.astype(np.uint8)).view(
      f"S{width}").reshape(-1)


def _numbers(buf, starts, ends, numbers, path, what) -> np.ndarray:
  """Decimals as float64: vectorised for the plain ones (``5``, ``4.5``,
  ``3.``, ``.5``), by ``float`` for the others (``-2``, ``4e0``); a field
  that is no finite number is an error naming its line."""
  begin = np.flatnonzero(buf[:int(np.max(ends, initial=0))] == ord("."))
  first = np.searchsorted(begin, starts)
  dots = np.searchsorted(begin, ends) - first
  dot = ends.copy()
  if begin.size:
    one = dots == 1
    dot[one] = begin[first[one]]
  ok = (dots <= 1) & (ends > starts) & (ends - starts > dots)
  whole_ok = _is_digits(buf, starts, dot) | (dot == starts)
  frac_ok = _is_digits(buf, dot + 1, ends) | (dot + 1 >= ends)
  bad = np.flatnonzero(~(ok & whole_ok & frac_ok)
                       | (dot - starts > MAX_DIGITS))
  safe_starts, safe_dot, safe_ends = starts.copy(), dot.copy(), ends.copy()
  safe_starts[bad] = safe_dot[bad] = safe_ends[bad] = 0
  whole = np.where(safe_dot > safe_starts, _integers(
      buf, safe_starts, np.maximum(safe_dot, safe_starts)), 0).astype(
          np.float64)
  frac_len = np.maximum(safe_ends - safe_dot - 1, 0)
  frac = np.where(frac_len > 0, _integers(buf, np.minimum(
      safe_dot + 1, safe_ends), safe_ends), 0)
  values = whole + frac / 10.0 ** frac_len
  # What the fast path does not read (a sign, an exponent: -2, 4e0, 1e30)
  # is read by Python's float; the checks of the ratings' range follow.
  for i in bad:
    text = _line_text(buf, starts[i], ends[i])
    try:
      value = float(text)
    except ValueError:
      value = float("nan")
    if not np.isfinite(value):
      raise ParseError(
          f"{path}, line {numbers[i]}: {what} must be a number, got "
          f"{text!r}")
    values[i] = value
  return values


def detect_delimiter(line: bytes, fields: int = 3) -> str:
  """The first of :data:`DELIMITERS` splitting ``line`` into at least
  ``fields`` fields."""
  text = line.decode("utf-8", "replace").strip()
  for delimiter in DELIMITERS:
    parts = text.split() if delimiter == " " else text.split(delimiter)
    if len(parts) >= fields:
      return delimiter
  raise ValueError(f"no delimiter of {DELIMITERS} splits {text!r} into "
                   f"{fields} fields")


KINDS = ("id", "int", "number", "text")


def read_table(path: str, columns: Sequence[int] = (0, 1, 2), *,
               kinds: Sequence[str] = ("id", "id", "number"),
               delimiter: Optional[str] = None,
               header: Optional[bool] = None) -> Table:
  """Reads delimited columns of a text file.

  Args:
    path: the file.
    columns: 0-based field numbers to read (e.g. user, item, rating).
    kinds: per column, ``"number"`` (a non-negative decimal, float64: the
      rating), ``"int"`` (an integer of at most 18 digits, int64) or
      ``"id"`` (int64 when every value is such an integer, else bytes) or
      ``"text"`` (bytes, whatever the values: ``007`` and ``7`` differ).
    delimiter: one of :data:`DELIMITERS` (``" "``: runs of spaces and
      tabs); None detects it from the first line.
    header: whether the first line names the columns; None: it does when
      its rating field is not a number and no id field is an integer.

  Returns:
    :class:`Table`.

  Raises:
    ParseError: naming the file and line.
  """
  buf, starts, ends, numbers = _read_lines(path)
  first_line = bytes(buf[starts[0]:ends[0]])
  if delimiter is None:
    try:
      delimiter = detect_delimiter(first_line, max(columns) + 1)
    except ValueError as e:
      raise ParseError(f"{path}, line {numbers[0]}: {e}.") from None
  field_starts, field_ends = _fields(buf[:ends[0]], starts[:1], ends[:1],
                                     numbers[:1], delimiter, path)
  if max(columns) >= field_starts.shape[1]:
    raise ParseError(
        f"{path}, line {numbers[0]}: needs field {max(columns) + 1} but the "
        f"lines have {field_starts.shape[1]} fields separated by "
        f"{delimiter!r}: {first_line[:200].decode('utf-8', 'replace')!r}")
  if header is None:
    # A header names the columns: its rating field is no number, and none
    # of its id fields is an integer (``1,5,n/a`` is a bad first rating,
    # not a header, and is reported as one).
    header = False
    for c, kind in zip(columns, kinds):
      if kind == "number":
        try:
          _numbers(buf[:ends[0]], field_starts[:1, c], field_ends[:1, c],
                   numbers[:1], path, "the value")
        except ParseError:
          header = True
    header = header and not any(
        _is_digits(buf, field_starts[:1, c], field_ends[:1, c])[0]
        for c, kind in zip(columns, kinds) if kind != "number")
  shape = (field_starts.shape[1], numbers[0])
  if header:
    starts, ends, numbers = starts[1:], ends[1:], numbers[1:]
    if numbers.size == 0:
      raise ParseError(f"{path}: no ratings after the header line.")
  for kind in kinds:
    if kind not in KINDS:
      raise ValueError(f"kinds must be of {KINDS}, got {kind!r}.")
  # Blocks of lines, so that the field boundaries (several int64 per field)
  # exist for one block at a time. An id column is integers when every
  # block's values are; else it is read again as text where it was not.
  blocks = [slice(i, i + LINES_PER_BLOCK)
            for i in range(0, starts.size, LINES_PER_BLOCK)]
  read = lambda block, text: _read_block(
      buf, starts[block], ends[block], numbers[block], delimiter, path,
      shape, columns, kinds, text)
  parts = [read(block, ()) for block in blocks]
  for j in range(len(columns)):  # all digits, but some too long for int64
    long = [part.too_long[j] for part in parts if j in part.too_long]
    if long and all(part.digits.get(j, True) for part in parts):
      raise ParseError(
          f"{path}, line {long[0][0]}: id {long[0][1]!r} has more than "
          f"{MAX_DIGITS} digits (it does not fit a 64-bit integer).")
  is_text = lambda part, j: part.columns[j].dtype.kind == "S"
  text = tuple(j for j in range(len(columns))
               if any(is_text(part, j) for part in parts))
  if text:
    parts = [part if all(is_text(part, j) for j in text)
             else read(block, text) for block, part in zip(blocks, parts)]
  out = [np.concatenate([part.columns[j] for part in parts])
         for j in range(len(columns))]
  return Table(out, numbers, delimiter, header)


LINES_PER_BLOCK = 1 << 18  # lines per block: bounds the per-field arrays


@dataclasses.dataclass
class _Block:
  """A block's columns; per id column (index into them) whether all its
  values are digits, and its first value too long for int64 as
  ``(line, text)`` when it has one."""
  columns: list[np.ndarray] = dataclasses.field(default_factory=list)
  digits: dict[int, bool] = dataclasses.field(default_factory=dict)
  too_long: dict[int, tuple[int, str]] = dataclasses.field(
      default_factory=dict)


def _read_block(buf, starts, ends, numbers, delimiter, path, shape, columns,
                kinds, text) -> _Block:
  """The ``columns`` of the lines ``starts``..``ends`` (a block of the
  file); id columns ``text`` (indices into ``columns``) are read as text,
  as are those with a value that is not all digits or too long."""
  lo, hi = int(starts[0]), int(ends[-1])
  buf, starts, ends = buf[lo:hi], starts - lo, ends - lo
  field_starts, field_ends = _fields(buf, starts, ends, numbers, delimiter,
                                     path, shape)
  out = _Block()
  for j, (c, kind) in enumerate(zip(columns, kinds)):
    s, e = field_starts[:, c], field_ends[:, c]
    if kind == "number":
      out.columns.append(_numbers(buf, s, e, numbers, path,
                                  f"field {c + 1} (a rating)"))
      continue
    empty = np.flatnonzero(e <= s)
    if empty.size:
      i = empty[0]
      raise ParseError(f"{path}, line {numbers[i]}: field {c + 1} (an id) is "
                       "empty.")
    if kind == "text":
      out.columns.append(_strings(buf, s, e))
      continue
    digits = _is_digits(buf, s, e)
    if kind == "int" and not np.all(digits):
      i = int(np.argmin(digits))
      raise ParseError(
          f"{path}, line {numbers[i]}: field {c + 1} must be a non-negative "
          f"integer id, got {_line_text(buf, s[i], e[i])!r}")
    out.digits[j] = bool(np.all(digits))
    long = np.flatnonzero(e - s > MAX_DIGITS)
    if long.size:
      out.too_long[j] = (int(numbers[long[0]]),
                         _line_text(buf, s[long[0]], e[long[0]]))
    if j in text or not out.digits[j] or long.size:
      out.columns.append(_strings(buf, s, e))
    else:
      out.columns.append(_integers(buf, s, e))
  return out


def read_netflix(path: str, with_ratings: bool = True) -> Table:
  """Reads a Netflix Prize file: blocks headed ``MovieID:`` lines, then
  ``CustomerID,Rating,Date`` lines (``combined_data_*.txt``) or
  ``CustomerID`` lines (``probe.txt``, ``with_ratings=False``).

  Returns:
    :class:`Table` with columns ``[customer ids, movie ids]`` and, with
    ratings, ``ratings`` (float64); ``lines`` are the data lines' numbers.
  """
  buf, starts, ends, numbers = _read_lines(path)
  is_header = buf[ends - 1] == ord(":")
  headers = np.flatnonzero(is_header)
  rows = np.flatnonzero(~is_header)
  if headers.size == 0 or rows.size == 0 or rows[0] < headers[0]:
    line = numbers[rows[0]] if rows.size else numbers[0]
    raise ParseError(f"{path}, line {line}: expected a 'MovieID:' line "
                     "before the first rating.")
  bad = np.flatnonzero(~_is_digits(buf, starts[headers], ends[headers] - 1))
  if bad.size:
    i = headers[bad[0]]
    raise ParseError(f"{path}, line {numbers[i]}: expected 'MovieID:', got "
                     f"{_line_text(buf, starts[i], ends[i])!r}")
  movies = _integers(buf, starts[headers], ends[headers] - 1)
  movie = movies[np.searchsorted(headers, rows) - 1]
  starts, ends, numbers = starts[rows], ends[rows], numbers[rows]
  if with_ratings:
    field_starts, field_ends = _fields(buf, starts, ends, numbers, ",", path)
    if field_starts.shape[1] < 2:
      raise ParseError(f"{path}, line {numbers[0]}: expected "
                       "'CustomerID,Rating,Date'.")
  else:
    field_starts, field_ends = starts[:, None], ends[:, None]
  customer_digits = _is_digits(buf, field_starts[:, 0], field_ends[:, 0])
  if not np.all(customer_digits):
    i = int(np.argmin(customer_digits))
    raise ParseError(f"{path}, line {numbers[i]}: the customer id must be an "
                     f"integer, got {_line_text(buf, starts[i], ends[i])!r}")
  columns = [_integers(buf, field_starts[:, 0], field_ends[:, 0]), movie]
  if with_ratings:
    columns.append(_numbers(buf, field_starts[:, 1], field_ends[:, 1],
                            numbers, path, "the rating"))
  return Table(columns, numbers, ",", False)
