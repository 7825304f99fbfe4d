"""The output stage: frames → files. ``encode`` (FilmWriter: ffmpeg in its own process, fed through a bounded
queue; mp4, webm, gif, png, prores) and ``export`` (landscapes as vts, h5, npz, ply files)."""
