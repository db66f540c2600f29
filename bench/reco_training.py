"""bench/reco.py's training part: every algorithm fitted, beside the same computation in plain
pandas/scipy/numpy/sklearn where one exists, with a check that both found the same thing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

from boomerang.recommendations import algorithms, chains
from boomerang.recommendations import model as trained
from boomerang.recommendations.interactions import Interactions
from reco_shop import DENSE_LIMIT, say, timed

# -- training ---------------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    seconds: float | None
    baseline: str = ""
    base_seconds: float | None = None
    check: str = ""
    note: str = ""


def weighted(purchases: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """Purchases, carts and views in one frame weighted as model.train weighs them; a cart addition or a view is in
    a basket of the customer's day (a session), not in one basket of every signal, as a NaN basket would make."""
    session = signals["customer_id"].astype(str) + "@" + pd.to_datetime(signals["at"]).dt.strftime("%Y-%m-%d")
    return pd.concat(
        [
            purchases.assign(weight=trained.WEIGHTS["purchase"]),
            signals.assign(weight=signals["kind"].map(trained.WEIGHTS).fillna(0.0), basket=session).drop(
                columns="kind"
            ),
        ],
        ignore_index=True,
    )


def base_interactions(frame: pd.DataFrame) -> sp.csr_matrix:
    users, _ = pd.factorize(frame["customer_id"].astype(str))
    items, _ = pd.factorize(frame["sku"].astype(str))
    m = sp.coo_matrix((frame["weight"].to_numpy(float), (users, items))).tocsr()
    m.sum_duplicates()
    return m


def base_popularity(data: Interactions, half_life: float) -> np.ndarray:
    e = data.events
    at = e["at"].to_numpy()
    decay = 0.5 ** ((at.max() - at) / np.timedelta64(1, "D") / half_life)
    key = e["user"].to_numpy(np.int64) * data.shape[1] + e["item"].to_numpy(np.int64)
    order = np.lexsort((decay, key))
    last = np.r_[key[order][1:] != key[order][:-1], True]  # the latest (largest decay) of each customer and product
    pick = order[last]
    return np.bincount(e["item"].to_numpy()[pick], weights=decay[pick], minlength=data.shape[1])


def base_top_frequency(data: Interactions) -> pd.Series:
    return data.events.groupby(["user", "item"])["basket"].nunique()


def top_pairs(a: np.ndarray, b: np.ndarray, score: np.ndarray, k: int) -> pd.DataFrame:
    """Each a's k best b by score, by a sort."""
    frame = pd.DataFrame({"a": a, "b": b, "s": score}).sort_values(["a", "s"], ascending=[True, False])
    return frame[frame.groupby("a").cumcount() < k]


def base_bought_together(
    data: Interactions, neighbours: int, min_support: int, half_life: float | None
) -> pd.DataFrame:
    """Lift over orders (each order weighing 0.5 ** (age / half_life) when the model decays them), by a self-merge."""
    lines = data.events[["basket", "item", "at"]]
    when = lines.groupby("basket")["at"].min()
    age = (when.max() - when) / np.timedelta64(1, "D")
    weight = 0.5 ** (age / half_life) if half_life else age * 0 + 1.0
    lines = lines[["basket", "item"]].drop_duplicates()
    pairs = lines.merge(lines, on="basket")
    pairs = pairs[pairs["item_x"] != pairs["item_y"]]
    pairs["w"] = weight.reindex(pairs["basket"]).to_numpy()
    grouped = pairs.groupby(["item_x", "item_y"])["w"]
    co = grouped.sum()[grouped.size() >= min_support]
    count = (
        lines.assign(w=weight.reindex(lines["basket"]).to_numpy())
        .groupby("item")["w"]
        .sum()
        .reindex(range(data.shape[1]))
    )
    a, b = co.index.get_level_values(0).to_numpy(), co.index.get_level_values(1).to_numpy()
    lift = co.to_numpy() * weight.sum() / (count.to_numpy()[a] * count.to_numpy()[b])
    return top_pairs(a, b, lift, neighbours)


def base_item_knn(data: Interactions, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    x = data.matrix(binary=True).T.tocsr()
    seen = np.flatnonzero(x.getnnz(axis=1) > 0)  # products nobody touched have no direction
    k = min(neighbours + 1, len(seen))
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(x[seen])
    dist, idx = nn.kneighbors(x[seen])
    return seen, np.where(dist < 1.0 - 1e-12, seen[idx], -1)  # cosine 0: not a neighbour


def pair_overlap(ours: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> float:
    """Share of our (row, column) pairs that the baseline found too."""
    mine = ours.tocoo()
    key_ours = set((mine.row.astype(np.int64) * ours.shape[1] + mine.col).tolist())
    key_theirs = set((a.astype(np.int64) * ours.shape[1] + b).tolist())
    return len(key_ours & key_theirs) / max(len(key_ours), 1)


def base_ease(data: Interactions, columns: np.ndarray, regularisation: float) -> np.ndarray:
    x = data.matrix(binary=True)[:, columns].toarray()
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += regularisation
    p = np.linalg.inv(gram)
    b = p / -np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def train_all(
    label: str, purchases: pd.DataFrame, signals: pd.DataFrame, now: datetime, *, chain: bool = True, sample: int = 2000
) -> tuple[list[Row], trained.Model | None, list[tuple[str, float]]]:
    """Every algorithm with its baseline; with `chain`, PersonalChain (ranking `sample` customers) and model.train."""
    rows: list[Row] = []
    frame = weighted(purchases, signals) if len(signals) else purchases.assign(weight=1.0)
    say(f"{label}: Interactions.from_frame of {len(frame):,} rows")
    data, s = timed(lambda: Interactions.from_frame(frame))
    base, b = timed(lambda: base_interactions(frame))
    mine = data.matrix()
    check = (
        "same" if base.shape == mine.shape and base.nnz == mine.nnz else f"{base.shape} {base.nnz:,} vs {mine.nnz:,}"
    )
    rows.append(
        Row(
            "Interactions.from_frame",
            s,
            "pd.factorize + coo_matrix",
            b,
            check,
            f"{data.shape[0]:,} x {data.shape[1]:,}",
        )
    )
    for name, model in algorithms.catalogue().items():
        say(f"{label}: fit {name}")
        try:
            _, s = timed(lambda: model.fit(data))
        except Exception as e:  # noqa: BLE001 - a broken algorithm is reported, the rest still measured
            rows.append(Row(name, None, note=f"ERROR {type(e).__name__}: {e}"[:120]))
            continue
        row = Row(name, s)
        if name == "popularity":
            theirs, row.base_seconds = timed(lambda: base_popularity(data, model.half_life_days))
            row.baseline = "numpy lexsort + bincount"
            row.check = "same" if np.allclose(theirs, model._scores) else "DIFFERENT"
        elif name == "top_frequency":
            theirs, row.base_seconds = timed(lambda: base_top_frequency(data))
            row.baseline = "pandas groupby nunique"
            got = model._orders.tocoo()
            same = len(theirs) == got.nnz and np.isclose(theirs.sum(), got.data.sum())
            row.check = "same" if same else f"{len(theirs):,} vs {got.nnz:,}"
            row.note = "includes a popularity fit"
        elif name == "bought_together":
            pairs = int(data.events.groupby("basket").size().pow(2).sum())
            if pairs * 24 > DENSE_LIMIT:
                row.note = f"self-merge skipped: {pairs:,} pairs"
            else:
                say(f"{label}: baseline pandas self-merge of {pairs:,} pairs")
                theirs, row.base_seconds = timed(
                    lambda: base_bought_together(
                        data, model.neighbours, model.min_support, getattr(model, "half_life_days", None)
                    )
                )
                row.baseline = "pandas self-merge on order"
                row.check = f"{pair_overlap(model._similar, theirs['a'].to_numpy(), theirs['b'].to_numpy()):.1%} pairs"
        elif name == "item_knn":
            say(f"{label}: baseline sklearn NearestNeighbors")
            (seen, idx), row.base_seconds = timed(lambda: base_item_knn(data, model.neighbours))
            row.baseline = "sklearn NearestNeighbors"
            a, b_ = np.repeat(seen, idx.shape[1]), idx.ravel()
            keep = (b_ >= 0) & (a != b_)
            row.check = f"{pair_overlap(model._similar, a[keep], b_[keep]):.1%} pairs"
        elif name == "ease":
            cols = len(model._columns)
            row.note = f"{cols:,} of {data.shape[1]:,} products" + (" (max_items cap)" if cols < data.shape[1] else "")
            if data.shape[0] * cols * 8 > DENSE_LIMIT:
                row.note += f"; dense X {data.shape[0] * cols * 8 / 2**30:.1f} GB: no baseline"
            else:
                say(f"{label}: baseline dense EASE")
                theirs, row.base_seconds = timed(lambda: base_ease(data, model._columns, model.regularisation))
                row.baseline = "numpy dense X, inv"
                row.check = f"max diff {np.abs(theirs - model._weights).max():.1e}"
        elif name == "als":
            row.note = f"implicit, {model.factors} factors, {model.iterations} iterations"
        rows.append(row)
    if not chain:
        return rows, None, []
    bought = Interactions.from_frame(purchases.assign(weight=1.0), items=data.items, customers=data.customers)
    say(f"{label}: PersonalChain.fit")
    try:
        fitted, s = timed(lambda: chains.PersonalChain().fit(bought, now=now))
        rows.append(Row("PersonalChain.fit", s, note=f"as of {now:%Y-%m-%d}"))
        users = np.arange(bought.shape[0])
        if len(users) > sample:
            users = np.sort(np.random.default_rng(7).choice(users, sample, replace=False))
        say(f"{label}: PersonalChain.rank of {len(users):,} customers")
        _, s = timed(lambda: fitted.rank(users, trained.PERSONAL))
        rows.append(
            Row(
                "PersonalChain.rank",
                s,
                note=f"{len(users):,} of {bought.shape[0]:,} customers, k={trained.PERSONAL}: "
                f"{s / len(users) * 1000:.1f} s per 1,000",
            )
        )
    except Exception as e:  # noqa: BLE001
        rows.append(Row("PersonalChain", None, note=f"ERROR {type(e).__name__}: {e}"[:120]))
    steps: list[tuple[str, float]] = []
    mark = [time.perf_counter(), "interactions"]

    def progress(step: str) -> None:
        steps.append((str(mark[1]), time.perf_counter() - float(mark[0])))
        mark[:] = [time.perf_counter(), step]
        say(f"{label}: model.train: {step}")

    say(f"{label}: model.train")
    try:
        model, s = timed(lambda: trained.train(purchases, signals, now=now, progress=progress))
        steps.append((str(mark[1]), time.perf_counter() - float(mark[0])))
        rows.append(Row("model.train (all)", s, note=f"{len(steps)} steps, below"))
    except Exception as e:  # noqa: BLE001
        model = None
        rows.append(Row("model.train", None, note=f"ERROR {type(e).__name__}: {e}"[:120]))
    return rows, model, steps


def print_training(title: str, rows: list[Row], steps: list[tuple[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'':26} {'ours s':>8}  {'baseline':28} {'theirs s':>8} {'ours/theirs':>11}  {'check':16} note")
    for r in rows:
        ours = f"{r.seconds:8.2f}" if r.seconds is not None else f"{'-':>8}"
        theirs = f"{r.base_seconds:8.2f}" if r.base_seconds is not None else f"{'-':>8}"
        ratio = f"{r.seconds / r.base_seconds:11.2f}" if r.seconds is not None and r.base_seconds else f"{'-':>11}"
        print(f"  {r.name:26} {ours}  {r.baseline or '-':28} {theirs} {ratio}  {r.check or '-':16} {r.note}")
    if steps:
        print("  model.train steps: " + ", ".join(f"{name} {s:.2f} s" for name, s in steps))
