"""Captured keyframes → one surface per video frame (interpolation, holds, speed ramps, cards, scaling). Pure numpy.

Time runs: an optional title card; ``hold_start`` seconds on the first captured step; between consecutive captured
steps a transition of ``seconds_per_step / speed`` (the speed ramp) and, on every step in between, ``hold_each``;
``hold_end`` seconds on the last step; an optional end card. Every part boundary is snapped to a whole frame
(:func:`schedule`), so a frame shows each captured step's values exactly, whatever the interpolation and the ramp.
'cubic' is one spline through whole captured frames in film time (:func:`hermite_weights`): every value moves at a
continuous speed through the captured steps (a per-value monotone fit would stop each value where it turns, a
visible pulse at every step).

A zoom film (``grid.zoom``) captures every step on its own range, ``scales[k]`` times the first step's. The values
are still interpolated index by index (grid-index coordinates), so the surface morphs from one zoom level to the
next; the frame's scale is interpolated geometrically (its log, with the values' easing), so the zoom runs at an
even pace in the eye. Marker, trail, arrows and critical points stay in (alpha, beta) units: the renderer divides
them by the frame's scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..config.scene import ScalingSpec, TimelineSpec
from .critical import critical_points


def scale_loss(loss: np.ndarray, spec: ScalingSpec) -> np.ndarray:
    """Clip then (optionally) log10 the loss. Non-finite values must already have been replaced."""
    v = np.asarray(loss, dtype=np.float64)
    if spec.clip is not None:
        v = np.minimum(v, spec.clip)
    if spec.log:
        v = np.log10(np.maximum(v, 1e-12))
    return v


def fill_nonfinite(loss: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN/inf (a diverged run) with the largest finite value; returns the array and how many were bad."""
    bad = ~np.isfinite(loss)
    n = int(bad.sum())
    if n == 0:
        return loss, 0
    finite = loss[~bad]
    fill = finite.max() if finite.size else 1.0
    return np.where(bad, fill, loss), n


def _hold_last_finite(path) -> np.ndarray:
    """(K, 2) path with non-finite points (a diverged run) replaced by the last finite one (or the centre)."""
    out = np.asarray(path, dtype=np.float64).copy()
    last = np.zeros(2)
    for k in range(len(out)):
        if np.all(np.isfinite(out[k])):
            last = out[k]
        else:
            out[k] = last
    return out


def ease(s: np.ndarray | float, kind: str) -> np.ndarray | float:
    """Easing of a fraction s in [0, 1]: 'smoothstep' has zero slope at both ends."""
    if kind == "smoothstep":
        return s * s * (3.0 - 2.0 * s)
    return s


def transition_seconds(steps, spec: TimelineSpec) -> np.ndarray:
    """Seconds of each transition between consecutive captured ``steps`` (K,): (K-1,).

    The speed ramp is read at the middle of each transition, in fractions of training (the captured step numbers
    scaled to [0, 1]), so a ramp means the same whatever the capture spacing.
    """
    steps = np.asarray(steps, dtype=np.float64)
    n = max(len(steps) - 1, 0)
    if not spec.speed or n == 0:
        return np.full(n, spec.seconds_per_step)
    span = steps[-1] - steps[0]
    mid = ((steps[:-1] + steps[1:]) / 2 - steps[0]) / (span if span > 0 else 1.0)
    speed = np.interp(mid, [k.at for k in spec.speed], [k.speed for k in spec.speed])
    return spec.seconds_per_step / speed


def _card_seconds(card) -> float:
    return 0.0 if card is None else card.seconds


def film_length(n_captured: int, spec: TimelineSpec, fps: int, steps=None) -> tuple[float, int]:
    """(duration in seconds, number of frames) of a film of ``n_captured`` captured steps, cards included.

    ``steps`` (the captured step numbers) only matter for a speed ramp; default 0, 1, … K-1.
    """
    if spec.speed:
        moves = float(np.sum(transition_seconds(np.arange(n_captured) if steps is None else steps, spec)))
    else:
        moves = (n_captured - 1) * spec.seconds_per_step
    duration = (spec.hold_start + moves + max(n_captured - 2, 0) * spec.hold_each + spec.hold_end
                + _card_seconds(spec.title_card) + _card_seconds(spec.end_card))
    return duration, max(1, int(round(duration * fps)))


@dataclass(frozen=True)
class Schedule:
    """Whole-frame plan of a film. ``arrive`` and ``leave`` (K,): the first and the last frame showing captured step
    k exactly (equal unless the step is held); the transition k → k+1 runs over the frames between ``leave[k]`` and
    ``arrive[k+1]``. Frames [0, body_start) are the title card, [body_end, n_frames) the end card."""

    arrive: np.ndarray
    leave: np.ndarray
    body_start: int
    body_end: int
    n_frames: int
    duration: float


def schedule(steps, spec: TimelineSpec, fps: int) -> Schedule:
    """Snap the film's parts to frames: the times are summed in seconds, then each boundary is rounded once (not
    each part), so rounding errors do not accumulate along a long film."""
    k_n = len(steps)
    duration, n_frames = film_length(k_n, spec, fps, steps)
    moves = transition_seconds(steps, spec)
    title = _card_seconds(spec.title_card)
    t_arrive = np.empty(k_n)
    t_leave = np.empty(k_n)
    t = title + spec.hold_start
    for k in range(k_n):
        t_arrive[k] = t
        if 0 < k < k_n - 1:
            t += spec.hold_each
        t_leave[k] = t
        if k < k_n - 1:
            t += moves[k]
    arrive = np.round(t_arrive * fps).astype(np.int64)
    leave = np.round(t_leave * fps).astype(np.int64)
    # Every transition gets at least one frame of its own, so position() stays monotone and exact at each arrival.
    for k in range(k_n):
        if k > 0:
            arrive[k] = max(arrive[k], leave[k - 1] + 1)
        leave[k] = max(leave[k], arrive[k])
    body_start = int(round(title * fps))
    body_end = int(round((t + spec.hold_end) * fps)) if spec.end_card is not None else n_frames
    return Schedule(arrive, leave, body_start, min(max(body_end, body_start + 1), n_frames), n_frames, duration)


def stretched(spec: TimelineSpec, steps, n_frames: int, fps: int) -> TimelineSpec:
    """``spec`` with its hold_end extended so that a film of the captured ``steps`` has ``n_frames`` frames (a
    panel shorter than the longest holds its last step until the end)."""
    steps = np.asarray(steps, dtype=np.float64)
    _, own = film_length(len(steps), spec, fps, steps)
    if own == n_frames:
        return spec
    # Rounding duration * fps can land either side of the wanted count: try a little less or more.
    for nudge in (0.0, -0.25, 0.25):
        timeline = spec.model_copy(update={"hold_end": spec.hold_end + (n_frames - own + nudge) / fps})
        if film_length(len(steps), timeline, fps, steps)[1] == n_frames:
            return timeline
    raise AssertionError(f"cannot stretch a film of {own} frames to {n_frames}")  # pragma: no cover


def still_frame(schedules, fraction: Optional[float] = None) -> int:
    """The frame a scene's still shows (``output.still``): ``fraction`` (0 … 1) of the film's story, the frames
    between the title card and the end card (0: the first frame after the title card, 1: the last before the end
    card), rounded to the nearest frame; None: the frame where the last captured step arrives (the trained state,
    at the start of the end hold). Never a card frame. ``schedules``: the film's :class:`Schedule`, or one per
    panel of a panel film (all as long; the first panel's cards are the film's, and the default waits for the
    last panel to arrive)."""
    if isinstance(schedules, Schedule):
        schedules = [schedules]
    first, last = schedules[0].body_start, schedules[0].body_end - 1
    if fraction is None:
        frame = max(int(sc.arrive[-1]) for sc in schedules)
    else:
        frame = first + int(np.floor(fraction * (last - first) + 0.5))
    return int(min(max(frame, first), last))


def card_mix(card, t: float, title: bool) -> tuple[float, float]:
    """(text opacity, veil) of a card ``t`` seconds after its start; veil 1 hides the film behind the card's
    background, 0 shows the film. Both eased (smoothstep) so nothing starts or stops with a jolt."""
    def ramp(x, width):
        return 1.0 if width <= 0 else float(ease(np.clip(x / width, 0.0, 1.0), "smoothstep"))

    if not title:  # an end card is a title card played backwards
        t = card.seconds - t
    veil = ramp(card.seconds - t, card.dissolve)
    text = min(ramp(t, card.fade), veil)
    return text, veil


@dataclass(frozen=True)
class CardState:
    """A title or end card over a frame: ``veil`` (0 … 1) fades the landscape to the background, ``opacity``
    the text."""

    text: str
    subtitle: str
    opacity: float
    veil: float


@dataclass(frozen=True)
class FrameState:
    """What one video frame shows: ``values`` (nx, ny) scaled loss; the (fractional) step; the raw loss at the
    current weights; the value range heights and colours are normalised to; where the current weights sit on the
    plane (``marker``, (alpha, beta)) and the path that led there (``trail``, (M, 2), ending at the marker).
    ``scale``: the zoom, what the grid's axes are multiplied by in this frame (1 without ``grid.zoom``); the
    (alpha, beta) coordinates of marker, trail, arrow, runs and critical points are unscaled."""

    index: int
    values: np.ndarray
    step: float
    center_loss: float
    vmin: float
    vmax: float
    marker: tuple = (0.0, 0.0)
    trail: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    arrow: Optional[tuple] = None  # ((alpha, beta) start, (alpha, beta) end) of the held step's update
    # Scaled loss (as ``values``) along ``trail``, (M,): colours a trail by loss.
    trail_values: Optional[np.ndarray] = None
    epoch: Optional[float] = None
    # (steps (T,), training loss (T,)): the loss-curve inset's data, the same arrays for every frame.
    curve: Optional[tuple] = None
    card: Optional[CardState] = None
    colors: Optional[np.ndarray] = None  # (nx, ny) in [0, 1] (NaN: unknown), colours the surface instead of values
    # With several training runs on the plane, every run (the primary first, also drawn as marker/trail):
    # (name, marker (alpha, beta), trail (M, 2)) each.
    runs: tuple = ()
    # Critical points of ``values`` (llstudio.critical.CriticalPoint), when the look marks them.
    critical: tuple = ()
    scale: float = 1.0


@dataclass(frozen=True)
class Keyframes:
    """What a film interpolates, one entry per captured step.

    ``steps`` (K,) captured step numbers; ``loss`` (K, nx, ny) raw loss; ``center_loss`` (K,); ``path`` (K, 2)
    the (alpha, beta) of each captured step's weights on the plane (None: all at the centre); ``updates`` (K, 2)
    the update from each captured step to the next, in the same coordinates (shown while a step is held; None:
    none); ``scales`` (K,) each captured step's zoom (None: all 1); ``alphas`` (nx,) and ``betas`` (ny,) the grid
    axes (needed to find critical points). ``colors`` (K, nx, ny) an optional colour value per point in [0, 1]
    (e.g. the convexity ratio), interpolated through time like the loss. ``runs``: with several training runs on
    the same plane, ``(name, path (K, 2))`` for each (the primary first), interpolated like ``path``.
    """

    steps: np.ndarray
    loss: np.ndarray
    center_loss: np.ndarray
    path: Optional[np.ndarray] = None
    updates: Optional[np.ndarray] = None
    scales: Optional[np.ndarray] = None
    alphas: Optional[np.ndarray] = None
    betas: Optional[np.ndarray] = None
    colors: Optional[np.ndarray] = None
    runs: tuple = ()


def eased_ranges(values: np.ndarray, sigma: float) -> np.ndarray:
    """(K, 2) (vmin, vmax) of scaling.range = 'eased': each captured step's own range (values (K, nx, ny)),
    smoothed over ``sigma`` captured steps by a Gaussian (zero phase; the film's ends held). The range never
    collapses: it is at least a thousandth of the film's."""
    lo, hi = values.min(axis=(1, 2)), values.max(axis=(1, 2))
    if sigma > 0 and len(lo) > 1:
        lo = gaussian_filter1d(lo, sigma, mode="nearest")
        hi = gaussian_filter1d(hi, sigma, mode="nearest")
    floor = 1e-3 * max(float(values.max() - values.min()), 1e-12)
    mid = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, floor / 2)
    return np.column_stack([mid - half, mid + half])


def hermite_weights(sc: Schedule) -> tuple[np.ndarray, np.ndarray]:
    """The 'cubic' spline's tangent weights: (a, b), (K-1,) each, for :func:`hermite_blend`.

    The spline runs in film time (frames), not per transition, so the surface keeps its speed through a captured
    step even where the transitions on either side last different numbers of frames (a speed ramp). Its tangent at
    captured step k is the centred difference over time (a Catmull-Rom spline on whole frames):
    m_k = (v[k+1] - v[k-1]) / (L[k-1] + L[k]) with L the transitions' lengths in frames; a step the film holds
    still (the start and end holds, hold_each) gets a zero tangent, so the surface eases into and out of the hold.
    On transition k (s from 0 to 1 over L[k] frames) the tangents in units of s are L[k] m_k and L[k] m_{k+1}:
    a[k] = L[k] / (L[k-1] + L[k]) and b[k] = L[k] / (L[k] + L[k+1]), zero where the step is held.
    """
    k_n = len(sc.arrive)
    length = (sc.arrive[1:] - sc.leave[:-1]).astype(np.float64)  # (K-1,) frames of each transition
    held = sc.leave > sc.arrive
    held[0] = held[0] or sc.arrive[0] > sc.body_start
    held[-1] = held[-1] or sc.leave[-1] < sc.body_end - 1
    a = np.zeros(k_n - 1)
    b = np.zeros(k_n - 1)
    for k in range(k_n - 1):
        if not held[k]:
            a[k] = length[k] / (length[k - 1] + length[k]) if k > 0 else 0.5
        if not held[k + 1]:
            b[k] = length[k] / (length[k] + length[k + 1]) if k + 1 < k_n - 1 else 0.5
    return a, b


def hermite_blend(data: np.ndarray, k: int, s: float, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``data`` (K, ...) on transition k at fraction ``s`` (0 … 1) of the 'cubic' spline: the cubic Hermite
    through data[k] and data[k+1] with the tangents of :func:`hermite_weights`, a blend of at most four whole
    captured frames (never a per-value fit, so no value pauses where it turns). At an end of the film a free
    (unheld) end takes the one-sided difference: weight 0.5 of the two-step span, i.e. v[1] - v[0] itself."""
    a, b = weights[0][k], weights[1][k]
    h00, h01 = 2 * s**3 - 3 * s**2 + 1, -2 * s**3 + 3 * s**2
    h10, h11 = s**3 - 2 * s**2 + s, s**3 - s**2
    out = h00 * data[k] + h01 * data[k + 1]
    last = len(data) - 1
    if a:
        prev = data[k - 1] if k > 0 else 2 * data[k] - data[k + 1]  # a free start: its tangent is v[1] - v[0]
        out = out + (h10 * a) * (data[k + 1] - prev)
    if b:
        nxt = data[k + 2] if k + 2 <= last else 2 * data[k + 1] - data[k]
        out = out + (h11 * b) * (nxt - data[k])
    return out


class Timeline:
    """Maps video frames to interpolated landscapes: the captured steps' :class:`Keyframes`, timed by the
    scene's ``[timeline]`` and scaled by its ``[scaling]`` at ``fps`` frames a second.

    ``curve`` (steps (T,), loss (T,)) the training loss for an inset; ``steps_per_epoch`` turns steps into epochs;
    ``critical``: find the critical points of every frame's landscape (the keyframes then need their axes).
    """

    def __init__(self, keys: Keyframes, timeline: TimelineSpec, scaling: ScalingSpec, fps: int, *,
                 curve: tuple | None = None, steps_per_epoch: float | None = None, critical: bool = False):
        steps, loss, center_loss, path, updates = keys.steps, keys.loss, keys.center_loss, keys.path, keys.updates
        colors, runs, alphas, betas, scales = keys.colors, keys.runs, keys.alphas, keys.betas, keys.scales
        self.steps = np.asarray(steps, dtype=np.float64)
        filled, nbad = fill_nonfinite(np.asarray(loss, dtype=np.float64))
        if nbad:
            warnings.warn(f"{nbad} landscape values are NaN or infinite (the run diverged there); "
                          "they are shown at the highest finite loss", RuntimeWarning, stacklevel=2)
        self.values = scale_loss(filled, scaling)
        self.center_loss = np.asarray(center_loss, dtype=np.float64)
        self.path = np.zeros((len(self.steps), 2)) if path is None else _hold_last_finite(path)
        self.updates = None if updates is None else np.nan_to_num(np.asarray(updates, dtype=np.float64), nan=0.0,
                                                                    posinf=0.0, neginf=0.0)
        self.spec, self.scaling, self.fps = timeline, scaling, fps
        k = len(self.steps)
        self.schedule = schedule(self.steps, timeline, fps)
        self.duration, self.n_frames = self.schedule.duration, self.schedule.n_frames
        self.curve = None if curve is None else (np.asarray(curve[0], dtype=np.float64),
                                                 np.asarray(curve[1], dtype=np.float64))
        self.steps_per_epoch = steps_per_epoch
        self.vmin, self.vmax = float(self.values.min()), float(self.values.max())
        self.scales = np.ones(k) if scales is None else np.asarray(scales, dtype=np.float64)
        self._log_scales = np.log(self.scales)
        # 'cubic': one C1 spline through whole frames in film time (see hermite_weights); fewer than three captured
        # steps blend linearly.
        self._smooth = timeline.interpolation == "cubic" and k >= 3
        self._weights = hermite_weights(self.schedule) if self._smooth else None
        self._value_range = (float(self.values.min()), float(self.values.max()))
        self._ranges = eased_ranges(self.values, scaling.range_smoothing) if scaling.range == "eased" else None
        self.colors = None if colors is None else np.asarray(colors, dtype=np.float64)
        # An unknown colour (NaN, e.g. curvature of diverged weights) would spread to the neighbouring transitions
        # through the spline: those films blend colours linearly, which keeps NaN exactly where a captured step has it.
        self._colors_smooth = self.colors is not None and self._smooth and bool(np.all(np.isfinite(self.colors)))
        self.critical = critical
        self.alphas, self.betas = alphas, betas
        self.runs = [(str(name), _hold_last_finite(run_path)) for name, run_path in runs]

    def step_ranges(self) -> np.ndarray:
        """(K, 2): the (vmin, vmax) heights and colours are normalised to at each captured step."""
        if self._ranges is not None:
            return self._ranges
        if self.scaling.range == "frame":
            return np.column_stack([self.values.min(axis=(1, 2)), self.values.max(axis=(1, 2))])
        return np.tile([self.vmin, self.vmax], (len(self.steps), 1))

    def set_range(self, lo: float, hi: float) -> None:
        """Show heights and colours on ``lo`` … ``hi`` (scaled values) instead of the film's own range."""
        self.vmin, self.vmax = float(lo), float(hi)

    def position(self, frame: int) -> float:
        """Fractional index into the captured steps shown at ``frame`` (0 … K-1); monotone in ``frame``."""
        sc = self.schedule
        if frame <= sc.arrive[0]:
            return 0.0
        k = int(np.searchsorted(sc.arrive, frame, side="right")) - 1
        if k >= len(self.steps) - 1:
            return float(len(self.steps) - 1)
        if frame <= sc.leave[k]:
            return float(k)
        return k + (frame - sc.leave[k]) / float(sc.arrive[k + 1] - sc.leave[k])

    def frame_of_step(self, k: int) -> int:
        """The first video frame that shows captured step index ``k`` exactly: the arrival at it (for step 0, the
        end of the start hold)."""
        return int(self.schedule.arrive[k])

    def card_at(self, index: int) -> Optional[CardState]:
        """The title or end card over frame ``index``, if any."""
        sc, spec = self.schedule, self.spec
        if spec.title_card is not None and index < sc.body_start:
            card, t, title = spec.title_card, index / self.fps, True
        elif spec.end_card is not None and index >= sc.body_end:
            card, t, title = spec.end_card, (index - sc.body_end + 1) / self.fps, False
        else:
            return None
        opacity, veil = card_mix(card, t, title)
        return CardState(card.text, card.subtitle, opacity, veil)

    def _interpolate(self, u: float, data: np.ndarray, smooth: bool) -> np.ndarray:
        """``data`` (K, ...) at fractional captured index ``u``; exactly ``data[k]`` at whole ``u``. ``smooth``:
        the 'cubic' spline (when the timeline has one), else the linear or smoothstep blend."""
        k = int(np.floor(u))
        s = u - k
        if s == 0.0 or k >= len(self.steps) - 1:
            return data[min(k, len(self.steps) - 1)]
        if smooth and self._weights is not None:
            return hermite_blend(data, k, s, self._weights)
        s = ease(s, "smoothstep" if self.spec.interpolation == "smoothstep" else "linear")
        return (1.0 - s) * data[k] + s * data[k + 1]

    def values_at(self, u: float) -> np.ndarray:
        """Scaled landscape (nx, ny) at fractional captured index ``u``."""
        vals = self._interpolate(u, self.values, True)
        if self._smooth and u != int(u):
            # The spline may overshoot a captured value a little; never beyond the film's range.
            vals = np.clip(vals, *self._value_range)
        return vals

    def scale_at(self, u: float) -> float:
        """The zoom at fractional captured index ``u``: geometric between captured steps, exactly ``scales[k]`` at
        whole ``u``."""
        if u == int(u):
            return float(self.scales[min(int(u), len(self.steps) - 1)])
        return float(np.exp(self._interpolate(u, self._log_scales, True)))

    def marker_at(self, u: float) -> np.ndarray:
        """(alpha, beta) of the weights at fractional captured index ``u``, on the same curve as the surface."""
        return self._interpolate(u, self.path, True)

    def trail_at(self, u: float, per_step: int = 6) -> np.ndarray:
        """The path from the first captured step to ``u``, sampled ``per_step`` times per captured step: (M, 2)."""
        ts = np.arange(0.0, u, 1.0 / per_step)
        return np.array([self.marker_at(t) for t in ts] + [self.marker_at(u)])

    def frame(self, index: int) -> FrameState:
        """Everything frame ``index`` shows. Card frames show the first (last) step under their veil."""
        u = self.position(index)
        vals = self.values_at(u)
        idx = np.arange(len(self.steps))
        step = float(np.interp(u, idx, self.steps))
        center = float(np.interp(u, idx, self.center_loss))
        if self.scaling.range == "frame":
            vmin, vmax = float(vals.min()), float(vals.max())
        elif self._ranges is not None:
            vmin, vmax = (float(v) for v in self._interpolate(u, self._ranges, True))
        else:
            vmin, vmax = self.vmin, self.vmax
        moving = bool(np.any(self.path != 0.0))
        marker = tuple(float(v) for v in self.marker_at(u))
        trail = self.trail_at(u) if moving else np.zeros((0, 2))
        trail_values = None
        if len(trail):
            ts = np.append(np.arange(0.0, u, 1.0 / 6), u)  # the parameters trail_at samples
            trail_values = self.center_values(ts)
        arrow = None
        k = int(u)
        if self.updates is not None and self.spec.hold_each > 0 and u == k and k < len(self.steps) - 1:
            arrow = (marker, tuple(float(m + d) for m, d in zip(marker, self.updates[k])))
        colors = None if self.colors is None else self._interpolate(u, self.colors, self._colors_smooth)
        epoch = None if not self.steps_per_epoch else step / self.steps_per_epoch
        runs = tuple(self._run_at(u, name, p) for name, p in self.runs)
        scale = self.scale_at(u)
        crit = ()
        if self.critical:
            crit = tuple(critical_points(vals, self.alphas * scale, self.betas * scale))
        return FrameState(index, vals, step, center, vmin, vmax, marker, trail, arrow, trail_values, epoch,
                          self.curve, self.card_at(index), colors, runs, crit, scale)

    def _run_at(self, u: float, name: str, path: np.ndarray) -> tuple:
        """(name, marker, trail) of a run at fractional captured index ``u``, sampled like ``trail_at``."""
        ts = np.append(np.arange(0.0, u, 1.0 / 6), u)
        trail = np.array([self._interpolate(t, path, True) for t in ts])
        return name, tuple(float(v) for v in trail[-1]), trail

    def center_values(self, u) -> np.ndarray:
        """Scaled loss at the current weights at fractional captured indices ``u`` (M,), for colouring a trail."""
        raw, _ = fill_nonfinite(np.interp(u, np.arange(len(self.steps)), self.center_loss))
        return scale_loss(raw, self.scaling)

    def marker_track(self) -> np.ndarray:
        """(alpha, beta) of the marker at every frame: (n_frames, 2), for a camera that follows it."""
        return np.array([self.marker_at(self.position(f)) for f in range(self.n_frames)])

    def scale_track(self) -> np.ndarray:
        """The zoom at every frame: (n_frames,)."""
        return np.array([self.scale_at(self.position(f)) for f in range(self.n_frames)])
