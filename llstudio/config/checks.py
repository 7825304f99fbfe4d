"""The scene's cross-checks: rules between keys of different sections (a 1D grid has no y_range, several runs need
a fixed frame, ...), which no single section can check. Every check yields its problems as (key path, message);
the scene reports them all at once, but never next to a section's own problems: pydantic runs them only once every
section is valid. The panels' shared range is checked on the panels' merged scenes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

from .base import TRANSPARENT
from .datasets import size_problems
from .presets import ALPHA_FORMATS, format_problem, writes
from .problems import Problem
from .train_specs import OWN_DATASETS

if TYPE_CHECKING:  # only for annotations: scene.py imports this module
    from .panels import LayoutSpec
    from .scene import Scene

Problems = Iterator[Problem]

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
CONV_MODELS = ("cnn", "resnet", "vgg")


def _captured(steps: list[int]) -> str:
    """The captured steps, for a message: the first eight of them."""
    return f"{steps[:8]}{' ...' if len(steps) > 8 else ''}"


def _grid(s: Scene) -> Problems:
    g, d = s.grid, s.directions
    if g.dimensions == 1 and g.y_range is not None:
        yield "grid.y_range", "a 1D grid (grid.dimensions = 1) has no beta axis; remove y_range"
    if g.dimensions == 1 and not isinstance(g.resolution, int):
        yield "grid.resolution", "a 1D grid (grid.dimensions = 1) takes one number of points, e.g. 101"
    if d.kind == "weights" and d.weights is not None and len(d.weights) != g.dimensions:
        need = ("two different weights, e.g. [\"4.weight[5,250]\", \"4.weight[3,100]\"]" if g.dimensions == 2
                else "one weight, e.g. [\"4.weight[5,250]\"]")
        yield "directions.weights", f"a {g.dimensions}D grid needs {need}; got {len(d.weights)}"


def _runs(s: Scene) -> Problems:
    if not s.training.runs:
        return
    if s.directions.frame != "fixed":
        yield "directions.frame", ("several training.runs share one landscape, which needs frame = 'fixed' (leave "
                                   "frame out to get it)")
    if s.capture.data != "eval":
        yield "capture.data", ("several training.runs share one landscape, measured on the fixed evaluation "
                               "subset: use data = 'eval'")


def _endpoints(s: Scene) -> Problems:
    """directions.start, end and via: captured steps, named runs, two different points."""
    d = s.directions
    names = s.training.run_names() if s.training.runs else []
    for key in ("start", "end", "via"):
        e = getattr(d, key)
        if isinstance(e, int) and e not in s.captured_steps():
            yield f"directions.{key}", (f"step {e} is not a captured step; captured steps are "
                                        f"{_captured(s.captured_steps())}")
        if isinstance(e, str) and e.startswith("run:") and e[4:] not in names:
            yield f"directions.{key}", (f"{e!r} names no run; "
                                        + (f"the runs are {', '.join(names)}" if names else "the scene has no "
                                           "[[training.runs]]"))
    if d.start == d.end:
        yield "directions.end", (f"the same point as directions.start ({d.start!r}); the line between them would "
                                 "have no direction")


def _interpolation(s: Scene) -> Problems:
    d = s.directions
    ends = [k for k in ("start", "end", "via") if getattr(d, k) is not None]
    if d.kind != "interpolation":
        if ends:
            yield f"directions.{ends[0]}", "only for kind = 'interpolation'"
        return
    if d.frame != "fixed":
        yield "directions.frame", ("kind = 'interpolation' is one fixed plane centred at directions.start; "
                                   "'follow' does not apply (leave frame out)")
    if d.center != "final":  # the default, which an interpolation ignores
        yield "directions.center", "kind = 'interpolation' centres the plane at directions.start"
    if d.via is not None and s.grid.dimensions == 1:
        yield "directions.via", "a third point needs a 2D grid (grid.dimensions = 2)"
    yield from _endpoints(s)


def _plane(s: Scene) -> Problems:
    """The capture's steps and the plane they are drawn on."""
    d = s.directions
    if s.capture.steps is not None and s.capture.steps[-1] > s.training.steps:
        yield "capture.steps", f"step {s.capture.steps[-1]} is after the last training step ({s.training.steps})"
    if s.grid.range == "auto" and d.frame != "fixed" and d.kind != "weights":
        yield "grid.range", ("'auto' fits the grid to the projected training path, which needs directions.frame = "
                             "'fixed' or directions.kind = 'weights' (otherwise, in the 'follow' frame, the path "
                             "stays at the centre)")
    if (d.kind == "weights") != (d.weights is not None):
        yield "directions.weights", "name two weights exactly when directions.kind = 'weights'"
    if isinstance(d.center, int) and d.center not in s.captured_steps():
        yield "directions.center", (f"step {d.center} is not a captured step; captured steps are "
                                    f"{_captured(s.captured_steps())}")


def _output(s: Scene) -> Problems:
    # A transparent background against the format is checked with the format the film is written in, which the
    # command line may change (--format, -o's suffix): see ``format_problems``, called by render and check.
    fmt = s.output.format
    if s.output.path is not None and format_problem(fmt, path=s.output.path) is not None:
        yield "output.path", f"{s.output.path!r} does not fit output.format = {fmt!r}, which writes {writes(fmt)}"


def format_problems(s: Scene, fmt: Optional[str] = None) -> list[Problem]:
    """The scene against the format its film is written in: ``fmt`` (the command line's --format or -o's suffix),
    else output.format. A transparent background needs a format with alpha."""
    fmt = fmt or s.output.format
    if s.look.background == TRANSPARENT and format_problem(fmt, alpha=True) is not None:
        return [("look.background", f"'transparent' needs an output format with alpha ({' or '.join(ALPHA_FORMATS)}): "
                 f"set output.format, or render with --format {ALPHA_FORMATS[0]} (it is {fmt!r})")]
    return []


def _look(s: Scene) -> Problems:
    if s.look.anti_aliasing == "fxaa" and s.look.background == TRANSPARENT:
        yield "look.anti_aliasing", ("'fxaa' filters the finished picture and drops its alpha channel, which a "
                                     "transparent background needs: use 'ssaa', 'msaa' or 'none' (or 'auto')")


def _capture(s: Scene) -> Problems:
    """What is captured: the Hessian's step, per-sample landscapes, curvature maps."""
    h, c = s.directions.hessian_step, s.capture
    if s.directions.kind == "hessian" and isinstance(h, int) and h not in s.captured_steps():
        yield "directions.hessian_step", (f"step {h} is not a captured step (the weights are kept only at captured "
                                          f"steps); captured steps are {_captured(s.captured_steps())}")
    if s.look.sample is not None:
        if c.data != "samples":
            yield "look.sample", "shows one of the per-sample landscapes, which need capture.data = 'samples'"
        elif s.look.sample >= len(c.sample_indices()):
            yield "look.sample", (f"{s.look.sample} is past the {len(c.sample_indices())} captured samples "
                                  "(capture.samples); count from 0")
    if c.dropout == "fixed" and c.curvature_on:
        yield "capture.dropout", ("'fixed' masks are not applied by curvature maps, which measure the network "
                                  "without dropout; use capture.dropout = 'off' with [capture.curvature], or remove "
                                  "[capture.curvature] (or set capture.curvature.enabled = false)")
    if s.look.color_by == "convexity" and not c.curvature_on:
        yield "look.color_by", "'convexity' needs curvature maps: add a [capture.curvature] table"


def _model(s: Scene) -> Problems:
    """Keys of [model] and [data] that only some kinds of model or dataset have."""
    m = s.model
    if (m.kind == "custom") != (m.factory is not None):
        yield "model.factory", "name a factory ('package.module:function') exactly when model.kind = 'custom'"
    for key in ("width", "depth", "batch_norm"):
        if getattr(m, key) is not None and m.kind not in CONV_MODELS:
            yield f"model.{key}", f"applies to model.kind 'cnn', 'resnet' or 'vgg' only (model.kind is '{m.kind}')"
    if m.depth is not None and m.kind == "cnn":
        yield "model.depth", "applies to model.kind 'resnet' or 'vgg' only (the cnn has 2 conv layers)"
    if m.dropout is not None and m.kind not in ("cnn", "vgg"):
        yield "model.dropout", f"only model.kind 'cnn' and 'vgg' have dropout layers (model.kind is '{m.kind}')"
    for key in ("image_size", "channels"):
        if getattr(s.data, key) is not None and s.data.dataset not in IMAGE_DATASETS:
            yield f"data.{key}", f"applies to image datasets only ({', '.join(IMAGE_DATASETS)})"
    if m.kind in CONV_MODELS and s.data.dataset not in IMAGE_DATASETS + OWN_DATASETS:
        yield "model.kind", (f"'{m.kind}' is a conv model and needs an image dataset ({', '.join(IMAGE_DATASETS)}); "
                             f"data.dataset is '{s.data.dataset}'")
    has_bn = m.kind == "resnet" and m.batch_norm is not False or m.kind in ("cnn", "vgg") and bool(m.batch_norm)
    if s.capture.mode == "recompute_bn" and m.kind != "custom" and not has_bn:
        yield "capture.mode", ("'recompute_bn' recomputes BatchNorm statistics, but this model has no BatchNorm "
                               "layer (set model.batch_norm = true on a cnn, resnet or vgg, or use capture.mode = "
                               "'eval')")


def _source(s: Scene) -> Problems:
    """A run filmed from training.source is not trained: the keys that shape a training have nothing to act on."""
    t = s.training
    if t.source is None:
        return
    if t.runs is not None:
        yield "training.runs", "training.source films one recorded run; leave training.runs out"
    for key in ("init", "train_only"):
        if getattr(t, key) is not None:
            yield f"training.{key}", "nothing is trained with training.source (the run is read from it); leave it out"


def _data(s: Scene) -> Problems:
    """Keys of [data] that only some datasets have: 'custom' needs its factory, 'files' its path."""
    d = s.data
    if (d.dataset == "custom") != (d.factory is not None):
        yield "data.factory", "name a factory ('package.module:function') exactly when data.dataset = 'custom'"
    if (d.dataset == "files") != (d.path is not None):
        yield "data.path", "name a file (.npz or .pt with arrays 'x' and 'y') exactly when data.dataset = 'files'"
    if d.eval_path is not None and d.dataset != "files":
        yield "data.eval_path", "applies to data.dataset = 'files' only"
    for key in ("path", "eval_path"):
        v = getattr(d, key)
        if v is not None and not v.endswith((".npz", ".pt")):
            yield f"data.{key}", f"{v!r} is neither an .npz nor a .pt file (arrays 'x' and 'y', no pickle)"


def _counts(s: Scene) -> Problems:
    """Counts that must fit each other: samples in the evaluation subset, steps for PCA, columns for panels."""
    c = s.capture
    yield from size_problems(s.data)
    if c.data == "samples" and max(c.sample_indices()) >= s.data.eval_size:
        what = f"{c.samples} samples" if isinstance(c.samples, int) else f"position {max(c.samples)}"
        yield "capture.samples", (f"{what} asked for, but the evaluation subset has data.eval_size = "
                                  f"{s.data.eval_size} samples (positions 0 … {s.data.eval_size - 1})")
    if s.directions.kind == "pca" and len(s.captured_steps()) < 3:
        yield "directions.kind", "'pca' needs at least 3 captured steps to find two components"
    columns, panels = s.layout.columns, s.panels
    if columns is not None and panels and columns > len(panels):
        yield "layout.columns", f"{columns} columns for {len(panels)} panels; at most {len(panels)}"


# In the order the scene reports them.
CHECKS = (_grid, _runs, _interpolation, _plane, _output, _look, _capture, _model, _data, _source, _counts)


def cross_check_problems(scene: Scene) -> list[Problem]:
    """Every cross-section problem of ``scene`` (whose sections are each valid), with its key path."""
    return [problem for check in CHECKS for problem in check(scene)]


def shared_range_problems(layout: LayoutSpec, panels: list[Scene]) -> list[Problem]:
    """layout.shared_range against the panels' own scenes: one range for all of them needs the same scaling in
    every panel, over the whole film."""
    if not layout.shared_range:
        return []
    if len({(p.scaling.log, p.scaling.clip, p.scaling.range) for p in panels}) > 1:
        return [("layout.shared_range", "one range for all panels needs the same scaling.log, scaling.clip and "
                 "scaling.range in every panel; the panels differ")]
    if panels[0].scaling.range != "film":
        return [("layout.shared_range", "needs scaling.range = 'film' (with 'frame' or 'eased' every frame has a "
                 "range of its own)")]
    return []
