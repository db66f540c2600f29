"""The garbage collector as serve, its pipeline and the worker tune it (core.collector): start-up frozen, the
youngest generation collected less often, and garbage cycles still collected without asking."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import gc, weakref
from boomerang.core import collector

collector.tune()
print(gc.get_threshold(), gc.get_freeze_count() > 0)

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: reference counting alone never frees it
gone = weakref.ref(a)
del a, b
keep = [[] for _ in range(3 * collector.YOUNG_OBJECTS)]  # new container objects: the youngest generation fills
print(gone() is None)
"""


def test_tuned_collector_freezes_start_up_and_still_collects_cycles():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "(50000, 20, 100) True"
    assert out[1] == "True"
