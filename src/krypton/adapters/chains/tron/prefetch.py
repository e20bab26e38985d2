"""Deposit addresses derived ahead of need, in a helper process.

Every invoice with a Tron option takes the next index of a counter, and deriving its
address is an elliptic-curve addition (about 20 µs) plus hashing: measured at 30 µs alone
and about 50 µs on the event loop under load, a tenth of an invoice request. The indexes
come nearly in order (on PostgreSQL from a sequence shared by every process: two requests
of one process may use theirs in either order), so once a process has derived
`START_AFTER` addresses (it is busy), a helper process derives the next ones in batches
while the loop serves requests. (A thread does not do: it holds the GIL for its hashing,
and the loop waits for it; measured slower.)

Nothing depends on the helper: an index it has not delivered yet (the first ones, a jump
after another process took a run of the counter, or a helper that died) is derived
inline, with the same result. The helper is `python -m` this module: it reads the xpub
and then "start stop" lines on stdin and answers each with one line of addresses; it
exits when its stdin closes, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from krypton.adapters.chains.tron.derivation import MAX_INDEX, DepositAddresses

AHEAD = 512  # addresses per batch; the next batch is asked for when half are used
START_AFTER = 256  # addresses derived inline before the helper is worth starting

log = structlog.get_logger()


class PrefetchedAddresses:
    """`address(index)` as DepositAddresses has it, served from the helper's batches."""

    def __init__(self, xpub: str, ahead: int = AHEAD, start_after: int = START_AFTER) -> None:
        self.addresses = DepositAddresses(xpub)
        self._xpub = xpub
        self.ahead = ahead
        self.start_after = start_after
        self.inline = 0  # addresses derived here, on the caller's thread
        self._ready: dict[int, str] = {}
        self._requested = -1  # the highest index asked of the helper so far
        self._helper: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._off = False  # closed, or the helper failed: inline from now on

    def address(self, index: int) -> str:
        ready = self._ready.pop(index, None)
        if ready is None:
            self.inline += 1
            ready = self.addresses.address(index)
        if (self._requested - index < self.ahead // 2 and self.inline >= self.start_after
                and self._task is None and not self._off and index < MAX_INDEX):
            self._prefetch_after(index)
        return ready

    def _prefetch_after(self, index: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # called outside the event loop (a script): inline only
        start = max(index + 1, self._requested + 1)
        stop = min(start + self.ahead, MAX_INDEX + 1)
        self._requested = stop - 1
        # Indexes well below this one went to another process: nobody will ask for them.
        # (Just below may still come: a request that took its index first can ask last.)
        for stale in [i for i in self._ready if i < index - self.ahead]:
            del self._ready[stale]
        self._task = loop.create_task(self._fetch(start, stop))

    async def _fetch(self, start: int, stop: int) -> None:
        try:
            helper = self._helper or await self._start()
            assert helper.stdin is not None and helper.stdout is not None
            helper.stdin.write(f"{start} {stop}\n".encode())
            await helper.stdin.drain()
            line = await helper.stdout.readline()
            batch = dict(zip(range(start, stop), line.decode().split(), strict=True))
            self._ready.update(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Inline derivation carries on; a helper that failed once is not tried again.
            log.warning("tron_address_helper_failed", error=str(exc))
            await self.aclose()
        finally:
            self._task = None

    async def _start(self) -> asyncio.subprocess.Process:
        self._helper = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        assert self._helper.stdin is not None
        self._helper.stdin.write(self._xpub.encode() + b"\n")  # public, but kept off argv
        return self._helper

    async def aclose(self) -> None:
        self._off = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            self._task = None
        helper, self._helper = self._helper, None
        if helper is not None and helper.returncode is None:
            assert helper.stdin is not None
            helper.stdin.close()  # the helper exits at end of input
            try:
                await asyncio.wait_for(helper.wait(), 5)
            except TimeoutError:
                helper.kill()
                await helper.wait()


def _serve() -> None:
    """The helper: the xpub on the first line, then one line of addresses per request."""
    addresses = DepositAddresses(sys.stdin.readline())
    for request in sys.stdin:
        start, stop = (int(n) for n in request.split())
        print(" ".join(addresses.address(i) for i in range(start, stop)), flush=True)


if __name__ == "__main__":
    _serve()
