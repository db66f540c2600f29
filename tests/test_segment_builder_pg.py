"""A segment's members sorted, paged and exported on PostgreSQL as on SQLite (the sort keys are SQL)."""

from __future__ import annotations

import segments_data
from boomerang.segments import members, membership, service


def test_members_sort_and_export_on_postgresql(pg_ws):
    ids = segments_data.load(pg_ws)
    with pg_ws.uow.session() as s:
        service.save(s, {"name": "everyone", "rule": {"bucket": [0, 100]}}, now=pg_ws.now())
    membership.refresh(pg_ws.segments, ["everyone"])
    with pg_ws.uow.session() as s:
        spend = members.page(s, "everyone", sort="spend", direction="desc", per_page=2)
        assert [r["customer_id"] for r in spend["rows"]] == [ids["dan"], ids["ann"]] and spend["pages"] == 3
        assert spend["rows"][1]["orders"] == 3 and spend["rows"][1]["spend"] == 150.0
        last = members.page(s, "everyone", sort="last_order", direction="asc")["rows"]
        assert [r["customer_id"] for r in last][:3] == [ids["bob"], ids["dan"], ids["ann"]] and last[-1][
            "last_order"
        ] is None
        names = members.page(s, "everyone", sort="name", direction="asc", page=2, per_page=4)["rows"]
        assert len(names) == 1
        assert members.page(s, "everyone", sort="email", direction="desc")["rows"][0]["email"] == "bob@example.com"
        assert sorted(r["customer_id"] for r in members.every(s, "everyone")) == sorted(ids.values())
