"""Compatibility: ``from llstudio.export import export`` (the README's notebook use before the stage layout) keeps
working; the exporters live in ``llstudio.output.export``."""

from .output.export import FORMATS, default_directory, export, export_h5, export_npz, export_ply, export_vts, require

__all__ = ["FORMATS", "default_directory", "export", "export_h5", "export_npz", "export_ply", "export_vts", "require"]
