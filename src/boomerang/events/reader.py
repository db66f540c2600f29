"""What a `with log.reader() as r:` block reads: the log's tables as Ibis expressions (events, the profile mirror,
consents, traits, and what the log keeps at write beside them: the rollups and the cancelled orders), on whichever
engine holds them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boomerang.events import rollups

if TYPE_CHECKING:
    import ibis


class Reader:
    """The log's tables as Ibis expressions, for the span of a `with log.reader()` block."""

    def __init__(self, backend: ibis.BaseBackend) -> None:
        self.backend = backend
        # ibis's list_tables() asks this DuckDB for a method it no longer has: the catalogue directly
        self._names = {
            row[0] for row in backend.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }

    @property
    def events(self) -> ibis.Table:
        return self.backend.table("events")

    @property
    def profiles(self) -> ibis.Table:
        """customer_id, the profile's fields, attributes (JSON): a copy of the operational store's profiles."""
        return self.backend.table("profiles")

    @property
    def rollup(self) -> ibis.Table:
        """day, customer_id, event, events, value, first_at, last_at, cancelled, cancelled_value: the log counted
        per day x customer x event, kept at every write (see `events.rollups`)."""
        return self.backend.table(rollups.TABLE)

    @property
    def kept_rollup(self) -> ibis.Table | None:
        """`rollup` where this log keeps it at every write, as a table to read instead of the events; None where this
        engine's log keeps none (the lake)."""
        return self.rollup if rollups.TABLE in self._names else None

    @property
    def totals(self) -> ibis.Table | None:
        """customer_id, event, events, first_at, last_at: each known customer's events over all time, kept at every
        write (see `events.rollups`); None where this engine's log keeps none."""
        return self.backend.table(rollups.TOTALS) if rollups.TOTALS in self._names else None

    @property
    def cancelled(self) -> ibis.Table | None:
        """order_id: the orders some event cancels, kept at every write (see `events.rollups`); None where this
        engine's log keeps none."""
        return self.backend.table(rollups.CANCELLED) if rollups.CANCELLED in self._names else None

    @property
    def segment_changes(self) -> ibis.Table | None:
        """day, segment, event, events: the Segment Entered and Exited events per day and segment, kept at every
        write (see `events.rollups`); None where this engine's log keeps none."""
        return self.backend.table(rollups.SEGMENTS) if rollups.SEGMENTS in self._names else None

    @property
    def consents(self) -> ibis.Table:
        """customer_id, channel, granted: the current consents, beside the profiles."""
        return self.backend.table("profile_consents")

    def trait_kinds(self) -> list[str]:
        """The kinds of traits stored so far."""
        return sorted(name.removeprefix("trait_") for name in self._names if name.startswith("trait_"))

    def trait(self, kind: str) -> ibis.Table | None:
        """The stored per-customer results of one kind (rfm, lifecycle, predictions); None when never computed."""
        name = trait_table(kind)
        return self.backend.table(name) if name in self._names else None


def trait_table(kind: str) -> str:
    if not kind.isidentifier() or not kind.islower() or len(kind) > 40:
        raise ValueError(f"trait kind {kind!r} must be lower-case letters, digits and _")
    return f"trait_{kind}"
