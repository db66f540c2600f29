"""Privacy requests: a customer's data export and erasure, the addresses an erasure suppresses, and the audit
log of both.

- `export(session, log, customer_id, actor=, now=)`: one JSON-ready document (export.py)
- `erase(session, log, customer_id, actor=, now=)`: the person gone from both stores, counts kept (erase.py)
- `is_suppressed(session, kind, value)`: whether an email or phone belongs to an erased customer, for every
  path that sets addresses on profiles (suppression.py)
- `on_export`, `on_erase`: how each domain joins, registered by the composition root (hooks.py)
"""

from __future__ import annotations

from boomerang.customers.privacy.erase import erase
from boomerang.customers.privacy.export import export
from boomerang.customers.privacy.hooks import on_erase, on_export
from boomerang.customers.privacy.suppression import is_suppressed, suppressed

__all__ = ["erase", "export", "is_suppressed", "on_erase", "on_export", "suppressed"]
