"""`krypton telegram ...`: the bot's webhook registration; and `krypton merchant
telegram-link MERCHANT`, a one-time code that links a Telegram chat to a merchant.

Webhook mode registers the webhook by itself at start-up when KRYPTON_PUBLIC_URL is https
(and checks it every ten minutes); `set-webhook` is for a public URL Krypton does not know
(a proxy or tunnel in front), `webhook-info` shows what Telegram holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from krypton.adapters.telegram.bot_api import BotApiError
from krypton.adapters.telegram.merchant_api import MerchantBotApi
from krypton.app import merchant_bot
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out

app = typer.Typer(help="The Telegram bot: its webhook registration.", no_args_is_help=True)
NO_BOT = ("There is no Telegram bot: set KRYPTON_TELEGRAM_BOT_TOKEN and "
          "KRYPTON_TELEGRAM_WEBHOOK_SECRET.")


def telegram_link(
    merchant_id: Annotated[str, typer.Argument(help="The merchant (mer_…) the chat is linked to.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the code as JSON.")] = False,
) -> None:
    """Create a one-time code (valid 10 minutes) that links a Telegram chat to MERCHANT: send
    /link CODE to the bot from that chat, or open the deep link."""
    async def work(c: Container) -> merchant_bot.IssuedCode:
        kit = c.merchant_bot()
        if kit is None:
            raise support.fail(NO_BOT)
        return await merchant_bot.create_link_code(c.deps, kit, merchant_id, "cli")
    issued = support.run(work)
    if as_json:
        typer.echo(json.dumps({"code": issued.code, "merchant_id": issued.merchant_id,
                               "expires_at": issued.expires_at.isoformat(),
                               "deep_link": issued.deep_link}))
        return
    out.print(f"Link code (single use, until {issued.expires_at:%H:%M:%S} UTC): "
              f"[bold green]{issued.code}[/bold green]")
    out.print(f"Send [bold]/link {issued.code}[/bold] to the bot from the chat to link.")
    if issued.deep_link:
        out.print(f"Or open {issued.deep_link}")


def _api(c: Container) -> tuple[MerchantBotApi, str]:
    kit = c.merchant_bot()
    if kit is None or c.settings.telegram_bot_token is None \
            or not isinstance(kit.messenger, MerchantBotApi):
        # The devnet's fake bot needs no registration: it posts to the webhook itself.
        raise support.fail(NO_BOT)
    return kit.messenger, c.telegram_webhook_url()


@app.command("set-webhook")
def set_webhook(
    url: Annotated[str | None, typer.Option(
        help="The https URL Telegram posts to; default: KRYPTON_PUBLIC_URL/telegram/webhook.")] = None,
) -> None:
    """Register the webhook with Telegram, with the secret it must send back."""
    async def work(c: Container) -> str:
        api, default = _api(c)
        target = url or default
        if not target.startswith("https://"):
            raise support.fail(f"Telegram posts only to https URLs, not {target}; give --url "
                               "or set KRYPTON_PUBLIC_URL to an https URL, or use "
                               "KRYPTON_TELEGRAM_MODE=polling.")
        try:
            await api.set_webhook(target, c.telegram_webhook_secret())
        except BotApiError as exc:
            raise support.fail(str(exc)) from None
        return target
    out.print(f"Webhook registered: Telegram posts updates to {support.run(work)}.")


@app.command("delete-webhook")
def delete_webhook() -> None:
    """Remove the webhook (updates wait at Telegram until polled or a webhook is set)."""
    async def work(c: Container) -> None:
        api, _ = _api(c)
        try:
            await api.delete_webhook()
        except BotApiError as exc:
            raise support.fail(str(exc)) from None
    support.run(work)
    out.print("Webhook removed.")


@app.command("webhook-info")
def webhook_info() -> None:
    """What Telegram holds: the webhook URL, updates waiting, the last delivery error."""
    async def work(c: Container) -> tuple[str, int, str | None]:
        api, _ = _api(c)
        try:
            info = await api.webhook_info()
        except BotApiError as exc:
            raise support.fail(str(exc)) from None
        return info.url, info.pending_update_count, info.last_error_message
    url, pending, error = support.run(work)
    out.print(f"URL: {url or '(none: polling or unset)'}")
    out.print(f"Updates waiting: {pending}")
    out.print(f"Last error: {error or 'none'}")
