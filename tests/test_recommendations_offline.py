"""Recommenders and their offline evaluation: each algorithm on a small shop whose answers are known, the metrics
on hand-made rankings, and the time split on the Online Retail file with `boomerang reco evaluate`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from boomerang.cli.app import app as cli
from boomerang.recommendations import algorithms, chains, evaluate, ranker
from boomerang.recommendations.interactions import Interactions
from conftest import SHARED

T0 = datetime(2026, 1, 1)
RETAIL = SHARED / "data" / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz"


def _shop() -> Interactions:
    """Coffee buyers also buy filters (same orders); tea buyers buy cups; c0-c5 rebuy their coffee every week."""
    rows = []
    for c in range(12):
        first, second = ("coffee", "filter") if c < 6 else ("tea", "cup")
        for week in range(4 if c < 6 else 1):
            at = T0 + timedelta(weeks=week, hours=c)
            basket = f"o{c}-{week}"
            rows.append((f"c{c}", first, at, 1.0, basket))
            if week == 0 and c % 6 != 5:  # c5 and c11 never bought the second product
                rows.append((f"c{c}", second, at, 1.0, basket))
    rows.append(("c12", "sugar", T0, 1.0, "o12"))
    return Interactions.from_frame(pd.DataFrame(rows, columns=["customer_id", "sku", "at", "weight", "basket"]))


def _top(model, data: Interactions, customer: str, k: int = 2) -> list[str]:
    row = data.customers.get_loc(customer)
    scores = model.fit(data).scores(np.array([row]))
    return list(data.items[evaluate.top_k(scores, k)[0]])


@pytest.mark.parametrize("name", ["bought_together", "item_knn", "ease", "als", "tifu_knn"])
def test_personal_algorithms_find_what_goes_with_what_a_customer_bought(name):
    data = _shop()
    model = algorithms.catalogue()[name]
    assert "filter" in _top(model, data, "c5", k=2)  # bought coffee; coffee buyers buy filters
    assert "cup" in _top(model, data, "c11", k=2)


def test_baselines_rank_the_most_bought_and_the_customers_own():
    data = _shop()
    assert _top(algorithms.Popularity(), data, "c12", k=1) == ["coffee"]  # six customers, the latest purchases
    assert _top(algorithms.TopFrequency(), data, "c11", k=1) == ["tea"]
    scores = algorithms.TopFrequency().fit(data).scores(np.arange(data.shape[0]))
    assert scores.shape == data.shape


def test_bought_together_relates_products_of_the_same_orders():
    data = _shop()
    model = algorithms.BoughtTogether(min_support=1).fit(data)
    related = model.related(np.array([data.items.get_loc("coffee")]))
    assert data.items[int(np.argmax(related))] == "filter"


def test_metrics_count_repeat_and_new_products_apart():
    data = evaluate.Split(train=_shop(), users=np.array([0, 1]), repeat=[{1}, set()], explore=[{2, 3}, {4}])
    top = np.array([[1, 2, 9], [9, 8, 4]])
    got = evaluate.score(top, data, k=3)
    assert got["repeat_recall"] == 1.0 and got["repeat_customers"] == 1
    assert got["explore_recall"] == pytest.approx((0.5 + 1.0) / 2) and got["explore_customers"] == 2
    assert got["explore_ndcg"] == pytest.approx(((1 / np.log2(3)) / (1 + 1 / np.log2(3)) + (1 / np.log2(4))) / 2, 1e-3)


def _habits(now: datetime) -> Interactions:
    """Forty weeks of 80 customers before `now`: each rebuys their staple every 2 weeks and picks one of 30 other
    products now and then; a product nobody bought is in the catalogue; `future` is bought by all after `now`."""
    rng = np.random.default_rng(3)
    rows = []
    for c in range(80):
        staple = f"staple{c % 4}"
        for week in range(0, 40, 2):
            at = now - timedelta(weeks=40 - week, hours=c)
            rows.append((f"c{c}", staple, at, 1.0, f"o{c}-{week}"))
            if rng.random() < 0.5:
                rows.append((f"c{c}", f"p{rng.integers(30)}", at, 1.0, f"o{c}-{week}"))
        rows.append((f"c{c}", "future", now + timedelta(days=1 + c % 5), 1.0, f"f{c}"))
    frame = pd.DataFrame(rows, columns=["customer_id", "sku", "at", "weight", "basket"])
    items = pd.Index(sorted({*frame["sku"], "ghost"}))
    return Interactions.from_frame(frame, items=items)


def test_the_personal_chain_puts_a_regular_rebuy_first_and_says_it_is_a_repeat():
    now = datetime(2026, 6, 1)
    data = _habits(now)
    users = np.arange(data.shape[0])
    ranked = chains.PersonalChain().fit(data, now=now).rank(users, k=10)
    staples = [f"staple{int(c[1:]) % 4}" for c in data.customers]
    assert [data.items[row[0]] for row in ranked.items] == staples
    assert (ranked.sources[:, 0] == ranker.REPEAT).all()
    assert ranked.items.shape == (len(users), 10) and (ranked.items >= 0).all()  # always k products
    assert all(len(set(row)) == len(row) for row in ranked.items.tolist())


def test_the_personal_chain_ranks_nothing_nobody_bought_above_what_was_bought_and_sees_no_future():
    now = datetime(2026, 6, 1)
    data = _habits(now)
    chain = chains.PersonalChain().fit(data, now=now)
    ranked = chain.rank(np.arange(data.shape[0]), k=data.shape[1])
    ghost, future = data.items.get_loc("ghost"), data.items.get_loc("future")
    assert set(ranked.items[:, -2:].ravel()) == {ghost, future}  # bought by nobody before `now`: last
    train = ranker.training_set(data, now, 13, [algorithms.ItemKNN()])
    assert not train.rows.query("item == @future")["label"].any()  # bought after `now`: no label learnt from it
    assert (
        train.rows["days_since_last"].min() >= 0 and train.customers["new"].sum() + train.customers["repeat"].sum() > 0
    )


def test_the_training_window_learns_from_before_it_and_labels_what_came_in_it():
    now = datetime(2026, 6, 1)
    start = now - timedelta(weeks=13)
    data = _habits(now)
    train = ranker.training_set(data, now, 13, [])
    bought_before = data.events[data.events["at"] < start][["user", "item"]].drop_duplicates()
    past = train.rows[train.rows["source"] == ranker.REPEAT][["user", "item"]]
    assert len(past.merge(bought_before)) == len(past)  # repeat candidates: only what was bought before the window
    assert train.rows["label"].mean() > 0
    staple = train.rows[
        train.rows["item"].map(lambda i: data.items[i].startswith("staple")) & (train.rows["past"] == 1)
    ]
    assert staple["label"].all() and (staple["own_cycle"] == 14).all()  # the 2-week habit, learnt as a cycle


@pytest.mark.skipif(not RETAIL.exists(), reason="../shared/data is not beside the project")
def test_evaluate_on_online_retail_beats_the_baselines_where_each_should():
    result = CliRunner().invoke(cli, ["reco", "evaluate", str(RETAIL), "--cutoff", "2011-07-01", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by = {r["name"]: r for r in data["results"]}
    assert data["customers"] > 1000 and data["k"] == 20
    assert by["top_frequency"]["repeat_recall"] > 2 * by["popularity"]["repeat_recall"]
    assert by["item_knn"]["explore_recall"] > by["popularity"]["explore_recall"]
    chain = by["personal chain"]
    assert chain["kind"] == "chain" and chain["recall"] > by["tifu_knn"]["recall"]  # the best list overall
    assert chain["repeat_recall"] >= by["top_frequency"]["repeat_recall"]


def test_evaluate_names_the_bad_option(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli, ["reco", "evaluate", str(tmp_path / "none.csv"), "--cutoff", "2011-07-01"])
    assert bad.exit_code != 0 and "file" in bad.output
    (tmp_path / "x.csv").write_text("a\n1\n")
    bad = runner.invoke(cli, ["reco", "evaluate", str(tmp_path / "x.csv"), "--cutoff", "July", "--json"])
    assert bad.exit_code != 0 and "cutoff" in bad.output
    bad = runner.invoke(cli, ["reco", "evaluate", str(tmp_path / "x.csv"), "--format", "csv", "--cutoff", "2011-07-01"])
    assert bad.exit_code != 0 and "format" in bad.output
