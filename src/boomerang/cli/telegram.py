"""`boomerang telegram`: the shop's bot: customers' deep links, long polling, the webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from boomerang.cli.output import console, emit_json, failures, workspace

if TYPE_CHECKING:
    from boomerang.channels.telegram import BotApi

app = typer.Typer(help="The Telegram bot: link customers' chats, receive their commands.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command()
def link(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="the customer's id (cus_...)")],
    as_json: JsonOpt = False,
) -> None:
    """The t.me link that links a customer's Telegram chat to their profile when they press Start."""
    from boomerang.bot.links import deep_link
    from boomerang.messaging import preferences

    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            customer_id = preferences.get(session, customer_id)["customer_id"]  # NotFound for a stranger
        api, config = ws.bot.api()
        try:
            username = config.bot_username or _username(api)
        finally:
            api.close()
        url = deep_link(ws.secret, customer_id, username)
    if as_json:
        emit_json({"customer_id": customer_id, "bot": username, "link": url})
    else:
        console.print(url, soft_wrap=True, highlight=False)


def _username(api: BotApi) -> str:
    """The bot's @username from Telegram, for settings that do not name it."""
    from boomerang.channels.telegram import BotApiError
    from boomerang.core.errors import BoomerangError

    try:
        return api.call("getMe")["username"]
    except BotApiError as exc:
        raise BoomerangError(
            f"cannot ask Telegram for the bot's name ({exc.description}): set bot_username", field="telegram"
        ) from None


@app.command()
def poll(
    ctx: typer.Context, once: Annotated[bool, typer.Option(help="handle the updates waiting now, then exit")] = False
) -> None:
    """Receive the bot's updates by long polling until interrupted (instead of a webhook). `boomerang serve` does
    this itself (unless BOOMERANG_TELEGRAM__POLL_IN_SERVE=false): run it only where no server runs."""
    handled = 0

    def progress(count: int) -> None:
        nonlocal handled
        handled = count
        status.update(f"polling Telegram: {count:,} updates handled (Ctrl-C to stop)")

    with failures():
        ws = workspace(ctx)
        with console.status("polling Telegram (Ctrl-C to stop)") as status:
            try:
                handled = ws.bot.poll(timeout=0 if once else 25, max_rounds=1 if once else None, on_round=progress)
            except KeyboardInterrupt:
                pass
    console.print(f"{handled:,} updates handled")


@app.command("set-webhook")
def set_webhook(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="where Telegram reaches Boomerang: https://.../hooks/telegram")],
    as_json: JsonOpt = False,
) -> None:
    """Have Telegram POST the bot's updates to URL, with the webhook secret from the telegram settings."""
    with failures():
        workspace(ctx).bot.set_webhook(url)
    if as_json:
        emit_json({"webhook": url})
    else:
        console.print(f"Telegram will send the bot's updates to {url}")
