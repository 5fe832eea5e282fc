"""Short backup ids. A backup id starts with its creation time (so that ids sort newest first), and the
backups of a day share their first characters; their ends are random. A listing shows the last N hex
digits of each id, N the smallest from MINIMUM up that tells every id of the listing apart; wherever the
CLI takes a backup id, such an end (or a start) names the one backup of the environment that has it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

MINIMUM = 7  # as git's short hashes: 28 random bits, so that a short id stays unique as backups are added
_FULL = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PART = re.compile(r"^[0-9a-f-]{4,36}$")


class NoSuchBackup(LookupError):
    pass


class Ambiguous(LookupError):
    pass


def is_full(text: str) -> bool:
    return bool(_FULL.match(text.lower()))


def short_length(ids: Sequence[str], minimum: int = MINIMUM) -> int:
    """The least length >= ``minimum`` at which the ends of ``ids`` all differ."""
    ends = sorted(each[::-1] for each in set(ids))
    common = 0
    for one, other in itertools.pairwise(ends):
        shared = 0
        for a, b in zip(one, other, strict=False):
            if a != b:
                break
            shared += 1
        common = max(common, shared)
    return max(minimum, common + 1)


def short_ids(ids: Sequence[str], minimum: int = MINIMUM) -> dict[str, str]:
    """Each id's end, as long as the listing needs to tell them apart (one length for all, so they align)."""
    length = short_length(ids, minimum)
    return {each: each[-length:] for each in ids}


def resolve(reference: str, ids: Iterable[str]) -> str:
    """The one id of ``ids`` that ends (or starts) with ``reference``, case-insensitively."""
    wanted = reference.lower().strip().lstrip("…")
    if is_full(wanted):
        return wanted
    if not _PART.match(wanted):
        raise NoSuchBackup(f"{reference!r} is not a backup id (nor 4 or more of its hex digits)")
    found = [each for each in ids if each.lower().endswith(wanted) or each.lower().startswith(wanted)]
    if not found:
        raise NoSuchBackup(f"no backup id ends (or starts) with {reference!r}")
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        raise Ambiguous(f"{reference!r} names {len(found)} backups ({shown}); give more of the id")
    return found[0]
