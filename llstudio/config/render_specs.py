"""The sections the renderer and the output stage read: [look] and [output]."""

from __future__ import annotations

import difflib
from typing import Annotated, Literal, Optional

import matplotlib
from matplotlib.colors import is_color_like
from pydantic import Field, field_validator

from .base import TRANSPARENT, Section
from .presets import FORMATS, QUALITIES, format_help, quality_help


class LookSpec(Section):
    """What the surface and its overlays look like."""

    colormap: str = Field("viridis", description="Matplotlib colormap name (e.g. viridis, magma, inferno, cividis).")
    background: str = Field(
        "#0b0e18",
        description="Background colour: a name or '#rrggbb', or 'transparent' (an alpha channel, for compositing; "
        "needs output.format 'png' or 'prores').",
    )
    contours: Annotated[int, Field(ge=0, le=200)] = Field(
        14, description="Number of contour lines drawn on the surface (0: none)."
    )
    contour_color: str = Field("#ffffff", description="Colour of the contour lines.")
    marker: bool = Field(True, description="Mark the minimiser (the current weights) with a sphere.")
    marker_color: str = Field("#ff5a36", description="Colour of the minimiser marker.")
    trail: bool = Field(True, description="Draw the training path so far on the surface (fixed frame).")
    trail_color: str = Field("#f4f4f4", description="Colour of the training path.")
    run_colors: list[str] = Field(
        default_factory=lambda: ["#36c5ff", "#ffd23f", "#7cff6b", "#ff6bd6", "#b388ff"],
        description="Marker and path colours of the further training runs ([[training.runs]] after the first, which "
        "uses marker_color and trail_color), in order; reused cyclically.",
    )
    arrows: bool = Field(True, description="While a step is held (timeline.hold_each), draw its update as an arrow.")
    arrow_color: str = Field("#ffd166", description="Colour of the update arrow.")
    arrow_scale: float = Field(
        1.0, gt=0, description="Length of the update arrow relative to the real update (raise it to see tiny steps)."
    )
    overlay: bool = Field(True, description="Show the title, step and loss as text.")
    text_color: str = Field("#f2f2f2", description="Colour of the text overlay.")
    smooth_shading: bool = Field(True, description="Smooth (Phong) shading instead of flat facets.")
    specular: float = Field(0.35, ge=0, le=1, description="Specular highlight strength of the surface.")
    anti_aliasing: Literal["auto", "none", "msaa", "ssaa", "fxaa"] = Field(
        "auto", description="'ssaa': supersampling (VTK renders at a higher resolution and filters down; the "
        "smoothest edges and contour lines, about 2-3x the render time); 'msaa': 4x multisampling; 'fxaa': a "
        "post-process pass over the finished image (cheap; not with a transparent background, whose alpha it "
        "drops); 'none'. 'auto': SSAA from 1080 lines up (qualities h, p, k), MSAA below (l, m)."
    )
    background_top: str = Field(
        "auto", description="Colour at the top of a vertical background gradient ('background' is then the bottom "
        "colour). 'auto': a little lighter (on a dark background; darker on a light one) and bluer than "
        "'background', a soft studio backdrop; 'none': a plain background."
    )
    lighting: Literal["studio", "soft", "dramatic", "flat"] = Field(
        "studio", description="Lighting preset. 'studio': VTK's light kit (key, fill, back and head lights); 'soft': "
        "the light kit dimmed with more ambient light and a gentle highlight; 'dramatic': one low, raking key light "
        "and a faint fill; 'flat': no shading at all, colours exactly as the colormap says."
    )
    occlusion: float = Field(
        0.55, ge=0, le=1, description="Ambient occlusion: how much darker basins are than open ground (0: none, 1: "
        "black where the sky is hidden). Computed on the grid from the heights; colours and contours keep their "
        "meaning, only the shading changes. Not used on flat maps, 1D curves or with lighting = 'flat'."
    )
    pbr: bool = Field(False, description="Physically based material (metallic/roughness) instead of Phong shading.")
    metallic: float = Field(0.0, ge=0, le=1, description="PBR only: 0 = dielectric (plastic), 1 = metal.")
    roughness: float = Field(0.45, ge=0, le=1, description="PBR only: 0 = mirror-smooth, 1 = fully rough.")
    wireframe: bool = Field(False, description="Overlay the grid's mesh lines on the surface.")
    wireframe_color: str = Field("#ffffff", description="Colour of the wireframe overlay.")
    view: Literal["surface", "contours"] = Field(
        "surface", description="'surface': the 3D surface under the camera path; 'contours': a flat, top-down map of "
        "filled contours with contour lines, the path and the marker drawn on it (the camera section is ignored)."
    )
    trail_coloring: Literal["solid", "loss"] = Field(
        "solid", description="'solid': the training path in trail_color; 'loss': coloured by the loss along it "
        "(trail_colormap, on the surface's colour range)."
    )
    trail_colormap: str = Field("plasma", description="Colormap of a trail coloured by loss.")
    epoch: bool = Field(True, description="Show the epoch next to the step in the text overlay.")
    legend: bool = Field(False, description="Show a colour bar with the loss values of the colours.")
    loss_inset: bool = Field(False, description="Show a small chart of the training loss against the step, with a "
                             "dot at the current step.")
    inset_corner: Literal["top_right", "bottom_right", "top_left", "bottom_left"] = Field(
        "top_right", description="Corner of the loss-curve inset."
    )
    color_by: Literal["loss", "convexity"] = Field(
        "loss", description="What colours the surface: 'loss' (its height, with 'colormap'), or 'convexity': the "
        "ratio |lambda_min / lambda_max| of the Hessian's extreme eigenvalues (needs [capture.curvature]), with "
        "'convexity_colormap' over a fixed 0..1 range: 0 locally convex, 1 and above (clipped) as much negative "
        "curvature as positive.",
    )
    convexity_colormap: str = Field("coolwarm", description="Matplotlib colormap of the convexity ratio.")
    convexity_range: list[float] = Field(
        default_factory=lambda: [0.0, 1.0],
        description="[low, high] of the convexity ratio spread over the colormap (clipped outside): near a minimum "
        "the ratio often stays below 0.3, and [0, 0.3] shows its structure.",
    )

    @field_validator("convexity_range")
    @classmethod
    def _convexity_range(cls, v):
        if len(v) != 2 or not 0.0 <= v[0] < v[1]:
            raise ValueError("must be [low, high] with 0 <= low < high")
        return v
    sample: Optional[Annotated[int, Field(ge=0)]] = Field(
        None, description="With capture.data = 'samples': show the landscape of this one sample (0-based, in the "
        "order of capture.samples) instead of their mean. Panels that differ only here share one capture, so a "
        "grid of panels shows every sample's landscape beside their mean.",
    )
    critical_points: bool = Field(
        False, description="Mark the critical points of the shown landscape in every frame: minima (small blue "
        "spheres), maxima (orange) and saddles (white), found on the grid and refined between its nodes.",
    )

    @field_validator("colormap", "trail_colormap", "convexity_colormap")
    @classmethod
    def _cmap(cls, v):
        if v not in matplotlib.colormaps:
            close = difflib.get_close_matches(v, list(matplotlib.colormaps), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"unknown colormap {v!r}{hint}")
        return v

    @field_validator("run_colors")
    @classmethod
    def _run_colors(cls, v):
        bad = [c for c in v if not is_color_like(c)]
        if not v or bad:
            raise ValueError(f"must be a non-empty list of colours (names like 'white' or hex codes like '#1a2b3c'); "
                             f"not colours: {bad}")
        return v

    @field_validator("background", "contour_color", "marker_color", "trail_color", "arrow_color", "text_color",
                     "background_top", "wireframe_color")
    @classmethod
    def _color(cls, v, info):
        if info.field_name == "background" and v == TRANSPARENT:
            return v
        if info.field_name == "background_top" and v in ("auto", "none"):
            return v
        if v is not None and not is_color_like(v):
            raise ValueError(f"{v!r} is not a colour: use a name like 'white' or a hex code like '#1a2b3c'")
        return v


class OutputSpec(Section):
    """The film file."""

    quality: Literal[tuple(QUALITIES)] = Field(  # type: ignore[valid-type]
        "h", description="Quality preset: " + quality_help() + ". The command line's -q wins."
    )
    fps: Optional[Annotated[int, Field(ge=1, le=240)]] = Field(None, description="Frames per second (overrides the preset).")
    crf: Annotated[int, Field(ge=0, le=51)] = Field(
        18, description="H.264 constant rate factor: lower is better quality and larger files (18 looks lossless)."
    )
    encoder_preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
    ] = Field("veryfast", description="x264 speed/size trade-off. 'veryfast' (the default) encodes 1080p about "
              "2.3x faster than 'medium' at the same crf, for files of the same size and 0.2 dB lower PSNR on "
              "llstudio's films (measured); 'superfast' and 'ultrafast' double the file size.")
    path: Optional[str] = Field(
        None, description="Where the film goes. Default: renders/<scene file name> under the working directory, "
        "with the format's suffix (.mp4, .webm, .gif, .mov; none for a PNG sequence's directory)."
    )
    format: Literal[tuple(FORMATS)] = Field(  # type: ignore[valid-type]
        "mp4", description="File format: " + format_help() + ". crf applies to mp4 and webm (VP9's scale is "
        "0-63; 30 is typical there). The command line's --format wins."
    )
    still: Optional[Annotated[float, Field(ge=0, le=1)]] = Field(
        None, description="The frame `llstudio still` shows without --frame (the scene's picture in a gallery): a "
        "fraction of the film's story, the frames between the title card and the end card, so it never lands in "
        "a card: 0 is the first frame after the title card, 1 the last before the end card, 0.5 the middle; a "
        "fraction, so the same moment at every quality and fps. Default: the frame where the last captured step "
        "arrives (the trained state, at the start of the end hold)."
    )

