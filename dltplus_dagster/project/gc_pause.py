"""`gc_paused`: Python's cyclic garbage collector held off while a bulk of long-lived objects is built.

Building the definitions of a large project allocates hundreds of thousands of objects that
all live as long as the code location (specs, op and asset definitions, the manifest). The
collector runs after every few hundred allocations and rescans the survivors each time: at
500 pipelines that was about a quarter of the build's CPU time, for no garbage to find.
Reference counting still frees everything as usual; only the cycle search waits until the
block ends, and the collector is back on (if it was on) whatever happens inside.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector inside the block (re-entrant; restores the
    enabled/disabled state it found)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _promote_survivors()
            gc.enable()


def _promote_survivors() -> None:
    """Move every tracked object to the oldest generation, unscanned (`freeze` then `unfreeze`
    only relink lists). Otherwise the first collections after the pause scan the whole bulk
    as the youngest generation, then again as it is promoted: ~0.1 s at 500 pipelines, for
    objects that live as long as the code location. Unreachable cycles among them are found
    by the next full collection instead of the next young one."""
    gc.freeze()
    gc.unfreeze()
