"""`boomerang reco`: recommendations. `evaluate` scores every algorithm and the personal chain offline on a time
split of a purchase file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from boomerang.cli import reco_blocks
from boomerang.cli.output import Bar, console, emit_json, failures, table
from boomerang.core.errors import ValidationFailed

app = typer.Typer(help="Product recommendations.", no_args_is_help=True)
FORMATS = ("online-retail", "complete-journey")


@app.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="the purchases: UCI Online Retail or Complete Journey transactions")],
    format_: Annotated[str, typer.Option("--format", help="online-retail or complete-journey")] = "online-retail",
    cutoff: Annotated[str, typer.Option(help="learn before this day (YYYY-MM-DD), score the weeks after it")] = "",
    weeks: Annotated[int, typer.Option(min=1, max=104, help="how many weeks after the cutoff are scored")] = 13,
    k: Annotated[int, typer.Option(min=1, max=100, help="the length of each list")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Recall@k and NDCG@k of every algorithm and of the personal chain, for repeat and for new products."""
    from boomerang.recommendations import algorithms, datasets
    from boomerang.recommendations import evaluate as offline

    with failures():
        if format_ not in FORMATS:
            raise ValidationFailed([{"field": "format", "reason": f"must be one of {', '.join(FORMATS)}"}])
        if not file.is_file():
            raise ValidationFailed([{"field": "file", "reason": f"{file} is not a file"}])
        try:
            day = datetime.strptime(cutoff, "%Y-%m-%d")
        except ValueError:
            raise ValidationFailed([{"field": "cutoff", "reason": "must be a date, YYYY-MM-DD"}]) from None
        frame = (datasets.online_retail if format_ == "online-retail" else datasets.complete_journey)(file)
        data = offline.split(frame, day, weeks)
        if not len(data.users):
            raise ValidationFailed([{"field": "cutoff", "reason": "nobody bought both before and after it"}])
        models = list(algorithms.catalogue().values())
        with Bar(enabled=not as_json) as bar:
            bar.start(len(models), "training and ranking")
            rows = offline.evaluate(data, models, k=k, progress=lambda _: bar.advance(1))
    result = {"customers": len(data.users), "products": data.train.shape[1], "k": k, "results": rows}
    if as_json:
        return emit_json(result)
    grid = table(
        "",
        f"recall@{k}",
        f"ndcg@{k}",
        "repeat recall",
        "repeat ndcg",
        "new recall",
        "new ndcg",
        "seconds",
        title=f"{len(data.users):,} customers, {data.train.shape[1]:,} products; repeat: bought before the cutoff",
    )
    for r in rows:
        grid.add_row(
            r["name"],
            *(
                f"{r[key]:.4f}"
                for key in ("recall", "ndcg", "repeat_recall", "repeat_ndcg", "explore_recall", "explore_ndcg")
            ),
            f"{r.get('seconds', 0):.1f}",
        )
    console.print(grid)


for command in (reco_blocks.train, reco_blocks.blocks, reco_blocks.save, reco_blocks.delete, reco_blocks.recommend):
    app.command()(command)
