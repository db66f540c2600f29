"""Journeys in a privacy request: a customer's instances, conversions and approval requests, exported, and on
erasure ended and kept, for the journeys' results, under the pseudonym."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.privacy import analytics_trigger
from boomerang.customers.privacy import hooks as privacy
from boomerang.journeys import models as m
from boomerang.journeys.engine import State

ENDED = "exited"  # the outcome of an instance an erasure ends
DECIDER = "erasure"  # who rejects an erased customer's pending approvals


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' journey instances, conversions and approval requests (a privacy export's sections)."""
    return {
        "journey_instances": privacy.rows_of(
            session, m.Instance.customer_id, customer_ids, order_by=m.Instance.entered_at
        ),
        "journey_conversions": privacy.rows_of(
            session, m.Conversion.customer_id, customer_ids, order_by=m.Conversion.at
        ),
        "journey_approvals": privacy.rows_of(
            session, m.ApprovalRequest.customer_id, customer_ids, order_by=m.ApprovalRequest.created_at
        ),
    }


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's journeys end now (an unfinished instance exits, a pending approval is rejected); the
    instances keep their path and outcome under the pseudonym, without the customer's timezone or what their
    triggering event said beyond what counts need."""
    ended = sum(_end(instance, customer_id, pseudonym, now) for instance in _instances(session, customer_id))
    approvals = session.execute(
        sa.update(m.ApprovalRequest)
        .where(m.ApprovalRequest.customer_id == customer_id, m.ApprovalRequest.status == "pending")
        .values(status="rejected", decided_by=DECIDER, decided_at=now),
        execution_options={"synchronize_session": False},
    ).rowcount
    session.flush()
    moved = {
        "journey_instances": privacy.move_to(session, m.Instance.customer_id, customer_id, pseudonym),
        "journey_conversions": privacy.move_to(session, m.Conversion.customer_id, customer_id, pseudonym),
        "journey_approvals": privacy.move_to(session, m.ApprovalRequest.customer_id, customer_id, pseudonym, note=""),
    }
    return {"ended": {"journey_instances": ended, "journey_approvals": approvals}, "pseudonymised": moved}


def _instances(session: Session, customer_id: str) -> list[m.Instance]:
    return list(session.scalars(sa.select(m.Instance).where(m.Instance.customer_id == customer_id)))


def _end(instance: m.Instance, customer_id: str, pseudonym: str, now: datetime) -> bool:
    """Scrub the instance's state, and end it if it was still going; whether it was."""
    state = State.from_data(instance.state)
    going = state.status != "done"
    if going:
        state.status, state.outcome, state.wake_at, state.waiting_for = "done", ENDED, None, None
        instance.status, instance.outcome, instance.ended_at = "done", ENDED, now
        instance.wake_at = instance.waiting_for = None
    state.customer_id, state.timezone, state.trigger = pseudonym, None, analytics_trigger(state.trigger)
    instance.state = state.to_data()
    if instance.trigger_event_id:  # Boomerang's own event ids (a segment entered) may carry the customer's id
        instance.trigger_event_id = instance.trigger_event_id.replace(customer_id, pseudonym)
    instance.updated_at = now
    return going
