"""`krypton keys rotate`: a new key for the secrets Krypton keeps encrypted at rest."""

from __future__ import annotations

from typing import Annotated

import typer

from krypton.adapters.secrets.envelope import ENV_NAME, KeyRing, key_id_of, save_key_file
from krypton.app import webhooks
from krypton.bootstrap import Container
from krypton.cli import support
from krypton.cli.support import out

app = typer.Typer(help="The keys that encrypt secrets at rest (webhook signing secrets).",
                  no_args_is_help=True)


async def _used_keys(c: Container) -> set[str]:
    async with c.deps.uow(write=False) as uow:
        return {key_id_of(token) for e in await uow.webhooks.all_endpoints()
                for token in (e.secret, e.old_secret) if token is not None}


@app.command("rotate")
def rotate(prune: Annotated[bool, typer.Option(
        help="Instead: drop from the key file the keys no stored secret uses any more (after "
        "every Krypton process was restarted since the last rotation).")] = False) -> None:
    """Encrypt every stored secret again with a new key. With the key file (the default), a
    new key goes first in it and every secret is re-encrypted with it; the old keys stay, so
    processes still running with them keep working until restarted (then --prune). With
    KRYPTON_SECRET_KEY, put the new key first in it (keeping the old ones) for every process,
    run this, then remove the keys it names as unused."""
    async def work(c: Container) -> tuple[int, KeyRing, str, list[str]]:
        ring, source = c.secret_keys()
        key_file = c.settings.data_dir / "secret.key"
        if prune:
            if source == ENV_NAME:
                raise support.fail(f"The keys come from {ENV_NAME}: remove unused ones there.")
            kept = ring.without_unused(await _used_keys(c))
            save_key_file(key_file, kept)
            return 0, kept, source, [k for k in ring.key_ids if k not in kept.key_ids]
        if source != ENV_NAME:
            ring = ring.with_new_key()
            save_key_file(key_file, ring)  # first: a crash after this loses no key
        count = await webhooks.reseal_secrets(c.deps, ring)
        return count, ring, source, sorted(set(ring.key_ids) - await _used_keys(c) - {ring.current_id})
    try:
        count, ring, source, unused = support.run(work)
    except ValueError as exc:  # EnvelopeError: a key that is missing or a file that is wrong
        raise support.fail(str(exc)) from None
    if prune:
        out.print(f"Dropped {', '.join(unused) or 'no key'}; kept {', '.join(ring.key_ids)}.")
        return
    out.print(f"Re-encrypted {count} secret(s) with key [bold]{ring.current_id}[/bold] ({source}).")
    if source == ENV_NAME:
        if unused:
            out.print(f"No secret uses {', '.join(unused)} any more: remove it from {ENV_NAME}.")
    else:
        out.print("Restart every Krypton process so it seals with the new key, then run "
                  "`krypton keys rotate --prune` to drop the old ones from the key file.")
