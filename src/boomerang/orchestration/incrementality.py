"""Every test the shop runs, on one list: each journey against its control group, each started campaign's
variants against its holdout, each recommendation block against its popularity control, each imported
experiment's variants against its control; with what last-touch attribution credits the same journey or campaign
over the same time (a block: the revenue of the clicked products bought), so both figures stand side by side."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from boomerang.events.log import EventLog
from boomerang.experiments import imported
from boomerang.journeys import service as journeys
from boomerang.messaging import attribution, campaign_results, campaigns
from boomerang.orchestration import reco_performance


def _headline(kind: str, name: str, title: str, status: str, report: dict[str, Any], link: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "title": title or name,
        "status": status,
        "link": link,
        "units": sum(g["units"] for g in report["groups"].values()),
        "comparisons": report["comparisons"],
        "sample_ratio": report.get("sample_ratio"),
    }


def overview(
    session: Session,
    *,
    global_control_share: float,
    now: datetime,
    days: int = 90,
    log: EventLog | None = None,
    entered_in_period: bool = False,
) -> dict[str, Any]:
    """The tests, and last-touch attribution over the `days` before `now` (its window: attribution.WINDOW_DAYS);
    with the event log, each recommendation block against its popularity control over the same days too. With
    `entered_in_period`, journeys count only the customers who entered in those days and campaigns only those
    that started in them (a month's review); otherwise each test since it began."""
    since = now - timedelta(days=days)
    window = {"since": since, "until": now} if entered_in_period else {}
    credited = attribution.summary(session, since=since, until=now)
    by_source = {row["source"]: row for row in credited["by_source"]}
    tests = []
    for j in journeys.list_journeys(session):
        report = journeys.results(session, j["name"], global_control_share=global_control_share, **window)["journey"]
        report["comparisons"] = [c for c in report["comparisons"] if c["baseline"] == "control"]
        if j["status"] == "draft" and not any(g["units"] for g in report["groups"].values()):
            continue  # never ran
        row = _headline("journey", j["name"], j.get("title", ""), j["status"], report, f"/journeys/{j['name']}")
        tests.append({**row, "attributed": by_source.get(f"journey:{j['name']}")})
    for c in campaigns.listing(session):
        if not c["started_at"] or (window and not since <= datetime.fromisoformat(c["started_at"]) < now):
            continue
        report = campaign_results.results(session, c["name"], global_control_share=global_control_share)
        report["comparisons"] = [x for x in report["comparisons"] if x["baseline"] == "holdout"]
        row = _headline("campaign", c["name"], c["title"], c["status"], report, f"/campaigns/{c['name']}")
        tests.append({**row, "attributed": by_source.get(f"campaign:{c['name']}")})
    for e in imported.list_experiments(session):
        found = imported.describe(imported.get(session, e["name"]))
        report = found["report"]
        tests.append(
            {
                "kind": "imported",
                "name": e["name"],
                "title": e["name"],
                "status": "finished",
                "link": f"/experiments/imported/{e['name']}",
                "units": e["units"],
                "comparisons": [],
                "sample_ratio": report.get("sample_ratio"),
                "attributed": None,
                "imported": report,
            }
        )
    if log is not None:
        for block in reco_performance.compute(log, now=now, days=min(days, reco_performance.MAX_DAYS))["blocks"]:
            inc = block["incremental"]
            comparison = inc.get("comparison") or {
                "treated": "block",
                "baseline": "control",
                "verdict": "not enough data",
                "says": inc["reason"],
            }
            arms = block["variants"]
            tests.append(
                {
                    "kind": "recommendations",
                    "name": block["block"],
                    "title": block["block"],
                    "status": "shown",
                    "link": "/recommendations",
                    "units": arms["block"]["visitors"] + arms["control"]["visitors"],
                    "comparisons": [comparison],
                    "sample_ratio": None,
                    "attributed": {"revenue": arms["block"]["revenue"], "orders": arms["block"]["orders"]},
                }
            )
    return {"tests": tests, "attribution": credited}
