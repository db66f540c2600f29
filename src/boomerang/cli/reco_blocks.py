"""`boomerang reco train|blocks|block|save|delete|recommend`: training the recommendations, the blocks, and what a
block shows a customer or on a product page (registered on `reco.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boomerang.cli.output import Bar, console, definitions, emit_json, failures, readable, table, transaction, workspace
from boomerang.recommendations import store

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def train(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Train every algorithm on the event log now and measure them on the last four weeks of purchases."""
    from boomerang.orchestration import reco_training

    with failures():
        ws = workspace(ctx)
        settings = ws.settings
        with Bar(enabled=not as_json) as bar:
            bar.start(0, "training")
            result = reco_training.train(
                ws.log,
                settings.reco_model_path,
                now=ws.now(),
                history_days=settings.recommendations.history_days,
                progress=lambda step: bar.start(0, step),
            )
    if as_json:
        return emit_json(result)
    if not result["trained"]:
        console.print(f"nothing trained: {result['reason']}")
        return
    counts = result["counts"]
    console.print(
        f"trained in {result['seconds']:.1f} s on {counts['purchases']:,} purchased products, {counts['carts']:,} "
        f"cart additions and {counts['views']:,} views of {counts['customers']:,} customers and "
        f"{counts['products']:,} products"
    )
    if result["quality"]:
        grid = table(
            "algorithm",
            "recall@20",
            "repeat recall",
            "new recall",
            "ndcg@20",
            title="on the last four weeks of purchases (learned from before them)",
        )
        for r in result["quality"]:
            grid.add_row(r["name"], *(f"{r[k]:.3f}" for k in ("recall", "repeat_recall", "explore_recall", "ndcg")))
        console.print(grid)


def blocks(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every block (the shop's and the ready-made ones): its chain, filters and size."""
    with failures():
        with transaction(ctx) as (_, session):
            data = store.listing(session)
    if as_json:
        return emit_json(data)
    grid = table("block", "context", "chain", "filters", "size", "control", "stored")
    for b in data:
        filters = {k: v for k, v in b["filters"].items() if v not in (None, False, [])}
        grid.add_row(
            b["name"],
            b["context"],
            " > ".join(b["chain"]),
            readable(filters),
            str(b["size"]),
            f"{b['control_share']:.0%}",
            readable(b["stored"]),
        )
    console.print(grid)


def save(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a YAML or JSON file: one block or a list")],
    as_json: JsonOpt = False,
) -> None:
    """Create or replace blocks from a file; nothing is saved when one of them is wrong."""
    with failures():
        with transaction(ctx) as (ws, session):
            saved = [store.save(session, store.parse(d), by="cli", now=ws.now()) for d in definitions(file)]
    if as_json:
        return emit_json([b.model_dump(mode="json") for b in saved])
    console.print(f"saved {', '.join(b.name for b in saved)}")


def delete(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="the block")], as_json: JsonOpt = False
) -> None:
    """Forget the shop's version of a block: a ready-made one goes back to its defaults."""
    with failures():
        with transaction(ctx) as (_, session):
            deleted = store.delete(session, name)
    if as_json:
        return emit_json({"deleted": deleted})
    console.print(f"{name}: {'deleted' if deleted else 'nothing stored (ready-made defaults)'}")


def recommend(
    ctx: typer.Context,
    block: Annotated[str, typer.Argument(help="the block, e.g. home, product_page, cart, email")],
    customer: Annotated[str | None, typer.Option(help="any id or the email of a customer")] = None,
    product: Annotated[str | None, typer.Option(help="the sku of the product page")] = None,
    category: Annotated[str | None, typer.Option(help="the category page")] = None,
    cart: Annotated[str | None, typer.Option(help="skus in the cart, comma-separated")] = None,
    size: Annotated[int | None, typer.Option(min=1, max=50, help="how many products")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What a block shows: each product with the algorithm that picked it and why."""
    from boomerang.recommendations.service import Visitor

    skus = [s.strip() for s in cart.split(",") if s.strip()] if cart is not None else None
    with failures():
        with transaction(ctx) as (ws, session):
            result = ws.recommendations.recommend(
                session,
                block,
                Visitor(customer=customer),
                product=product,
                category=category,
                cart=skus,
                size=size,
                control=False,  # what the block shows; the control share sees best sellers
            )
    if as_json:
        return emit_json(result)
    who = result["customer_id"] or "an unknown visitor"
    grid = table(
        "#", "sku", "name", "price", "algorithm", "why", title=f"{result['block']} for {who} ({result['variant']})"
    )
    for item in result["items"]:
        grid.add_row(
            str(item["position"]),
            item["sku"],
            readable(item["name"]),
            readable(item["price"]),
            item["source"],
            item["reason"],
        )
    console.print(grid)
