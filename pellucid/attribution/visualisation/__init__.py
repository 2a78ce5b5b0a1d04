"""What a class or a unit of a network responds to: inputs made to excite it, and the real rows
that excite it most.

* :func:`maximise_image` — activation maximisation for image networks: a batch of images is
  optimised (Adam) to raise a class logit (or log-probability) or a unit's mean activation,
  regularised by random jitter, a total-variation and an L2 penalty, an optional Fourier
  (1/f-scaled) parametrisation, and kept in the data's range by a sigmoid.
* :func:`maximise_row` — for tabular networks behind an :class:`~pellucid.oracle.Oracle`: the
  raw row, inside the schema's bounds and categories, with the highest probability of a class,
  found by a batched coordinate search in raw space started from the best real rows.
* :func:`top_rows` — the real rows (or images) of a reference set with the highest class
  probability or unit activation.

Image maximisation lives in :mod:`.images`, row maximisation and top rows in :mod:`.rows`;
both are re-exported here.
"""

from .images import ImageMaximisation, maximise_image
from .rows import RowMaximisation, TopRows, maximise_row, top_rows

__all__ = [
    "ImageMaximisation",
    "RowMaximisation",
    "TopRows",
    "maximise_image",
    "maximise_row",
    "top_rows",
]
