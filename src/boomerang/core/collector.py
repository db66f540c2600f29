"""The garbage collector tuned for the long-running processes (the server, its pipeline, the worker, the demo).

CPython collects its youngest generation every 700 new container objects, and each collection walks every
object still young. Accepting a batch of 500 events makes tens of thousands of dicts and models, nearly all
gone by the end of the request, so the default collects dozens of times a batch and keeps promoting the
batch's objects to older generations, whose collections walk the whole heap: measured on the tracking API's
accept path, 40% of its time (49 to 28 microseconds an event), and 15 to 25% of the pipeline's round. So:
everything loaded at start-up (modules, the workspace, compiled statements) is frozen out of collection, and
the youngest generation is collected every 50,000 objects instead. Cycles are still collected; they live a
little longer.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 50_000  # container objects made between two collections of the youngest generation
OLDER = (20, 100)  # collections of one generation between two of the next


def tune() -> None:
    """Call once a process has loaded what it keeps for its life: freezes it, and collects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *OLDER)
