"""Garbage collector settings of the long-running processes (``serve`` and ``worker``).

Called once start-up is done (the database and blob store open, routes and services built):

- ``gc.freeze()``: everything alive then lives as long as the process (modules, tables,
  routes, settings), so it moves out of the collector's sight and full collections walk only
  the objects of requests and deliveries in flight. Without it each full collection walked
  the ~130k objects of the imported modules (~50-85 ms each on the delivery benchmark, about
  one per 1000 deliveries); +12% full-stack events/s in an A/B run.
- A young-generation threshold of 10,000 instead of Python's 700 (the older generations keep
  their 10 and 10). Reference counting frees almost everything a request or a delivery
  allocates; the collector only ever finds cycles. With 700, the objects of the 64 deliveries
  in flight alone crossed the threshold about every 12 deliveries, so a young collection
  (and every tenth one a middle one) walked them only to promote them, and they died later
  anyway: the worker spent ~5% of its instructions in ``gc_collect_main`` (callgrind, 500
  deliveries: ~58k instructions per delivery of ~1.16M). With 10,000: one young collection
  per ~3000 deliveries, and the same peak resident memory in the delivery run (116 MB vs
  117 MB over 3000 deliveries; cycles that do form wait a little longer to be freed).

Not for apps that tests build by the hundred in one process, where frozen garbage would pile
up: only the two commands call this.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Freeze what start-up built and raise the young-generation threshold (see above)."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
