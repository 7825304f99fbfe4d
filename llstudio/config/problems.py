"""A scene's problems as it reports them: each a (key path, message) pair such as
``("camera.keyframes[2].azimuth", "Input should be a valid number")``. Pydantic's errors become such pairs here, and
the pairs the scene's own cross-checks find become one ValidationError, so both reach :class:`SceneError` alike."""

from __future__ import annotations

import difflib
import re
import typing
from typing import Optional

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

from .panels import PanelSpec

Problem = tuple[str, str]  # (key path, message)

# A key path's parts: 'directions.weights[1]' → 'directions', 'weights', '[1]'.
_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def loc_to_path(loc: tuple) -> str:
    """('camera', 'keyframes', 2, 'azimuth') → 'camera.keyframes[2].azimuth'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def path_to_loc(path: str) -> tuple:
    """'camera.keyframes[2].azimuth' → ('camera', 'keyframes', 2, 'azimuth'): the inverse of :func:`loc_to_path`."""
    return tuple(int(index) if index else key for index, key in _PATH_PART.findall(path))


def validation_error(title: str, problems: list[Problem]) -> ValidationError:
    """One ValidationError holding every problem, each a value error at its key path, as pydantic reports the
    problems of a field validator: raised inside a model validator, pydantic adds them to the model's errors."""
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type="value_error", loc=path_to_loc(path), input=None, ctx={"error": msg})
                for path, msg in problems])


def _unwrap_model(annotation) -> Optional[type[BaseModel]]:
    """The BaseModel class inside an annotation like Optional[list[X]], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _model_at(root: type[BaseModel], loc: tuple) -> Optional[type[BaseModel]]:
    """The section class that owns the key at ``loc`` (loc without the key itself), starting from ``root``."""
    model: Optional[type[BaseModel]] = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            # pydantic inserts tags like 'list[int]' or 'function-after[...]' for unions and validators.
            continue
        model = _unwrap_model(field.annotation)
    return model


def _unknown_key(root: type[BaseModel], loc: tuple) -> str:
    """The message for a key the section does not have: the allowed keys, and the closest one."""
    owner = _model_at(root, loc[:-1])
    allowed = sorted(k for k in owner.model_fields if k not in ("source", "panel")) if owner else []
    key = str(loc[-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    if owner is PanelSpec and key in ("camera", "timeline", "output"):
        hint += "camera, timeline and output are shared by every panel (set them in the main scene); "
    return f"unknown key '{key}'; {hint}allowed here: {', '.join(allowed)}"


def describe(err: dict, root: type[BaseModel]) -> Problem:
    """One pydantic error (an item of ``ValidationError.errors()`` of model ``root``) as (key path, message)."""
    # pydantic inserts union/validator tags ('list[int]', 'constrained-int', 'int') into locations: keep field
    # names and list indices only.
    loc = tuple(p for p in err["loc"]
                if isinstance(p, int) or (p.isidentifier() and p not in ("int", "float", "str", "bool")))
    path = loc_to_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return path, _unknown_key(root, loc)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind in ("model_type", "dict_type"):
        msg = "must be a table (section), e.g. [" + path + "]"
    elif kind not in ("missing", "value_error") and "input" in err and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    return path, msg


def dedupe(problems: list[Problem]) -> list[Problem]:
    """The first problem per key path: a union field (int | list[int]) fails once per member."""
    seen, out = set(), []
    for path, msg in problems:
        if path in seen:
            continue
        seen.add(path)
        out.append((path, msg))
    return out


def problems_of(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Every problem of a failed validation of model ``root``, one per key path, in pydantic's order."""
    return dedupe([describe(e, root) for e in exc.errors()])
