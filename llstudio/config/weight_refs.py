"""Names of single scalar weights in a scene ('4.weight[5,250]'): checked by the scene, resolved by training and
the directions."""

from __future__ import annotations

import re

WEIGHT_REF = re.compile(r"^\s*(?P<name>[\w][\w.]*)\s*(?:\[(?P<index>\s*\d+\s*(?:,\s*\d+\s*)*)\])?\s*$")


def parse_weight_ref(ref: str) -> tuple[str, tuple[int, ...]]:
    """'4.weight[5,250]' → ('4.weight', (5, 250)); a scalar parameter may omit the index."""
    m = WEIGHT_REF.match(ref)
    if m is None:
        raise ValueError(f"{ref!r} is not a weight reference such as '4.weight[5,250]'")
    index = tuple(int(i) for i in m.group("index").split(",")) if m.group("index") else ()
    return m.group("name"), index
