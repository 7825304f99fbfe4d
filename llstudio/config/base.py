"""What every scene section shares: the strict, frozen base class, common field types and the validators several
sections use (weight references, grid resolutions)."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field

from .weight_refs import WEIGHT_REF

# look.background value that renders an alpha channel instead of a colour.
TRANSPARENT = "transparent"


class Section(BaseModel):
    # strict: a TOML string "300" where a number belongs is an error, not a silent conversion. TOML spells inf and
    # nan; no scene number may be either (``lr = inf`` trained to NaN on the first step).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


PosInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


def check_weight_refs(v: Optional[dict[str, float]]) -> Optional[dict[str, float]]:
    """Every key of ``v`` names one scalar weight ('0.weight[0,1]'): training.init, training.train_only, runs' init."""
    for ref in v or {}:
        if not WEIGHT_REF.match(ref):
            raise ValueError(f"{ref!r} is not a weight reference: write the parameter name and the index of the "
                             "entry, e.g. \"0.weight[0,1]\"")
    return v


def check_resolution(v, most: int, names: str):
    """A resolution is n or [n_x, n_y], each from 2 to ``most``."""
    vals = [v, v] if isinstance(v, int) else v
    if len(vals) != 2 or any(n < 2 or n > most for n in vals):
        raise ValueError(f"must be an integer from 2 to {most} or a list {names} of two such integers")
    return v

