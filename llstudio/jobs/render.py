"""The render command's three engines, chosen by its flags: scenes one after another in this process (each film
whole, or in segments with ``--split``), a batch of worker processes (``--jobs`` with several scenes), or the
ranks of a torch.distributed group (under ``torchrun`` or with ``--distributed``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..device import resolve_device
from ..errors import UsageError
from ..parallel import describe_environment, from_environment, launched, share_threads
from ..progress import Progress
from .job import Job, batch_exit_code, format_table
from .split import SPLITTABLE, check_split


@dataclass(frozen=True)
class RenderRequest:
    """``llstudio render``'s command line: the scene files and every option (plain values)."""

    scenes: tuple
    quality: Optional[str] = None
    format: Optional[str] = None
    frames: Optional[str] = None
    device: Optional[str] = None
    output: Optional[str] = None
    no_cache: bool = False
    progress: str = "auto"
    jobs: Optional[int] = None
    split: int = 1
    distributed: bool = False
    force: bool = False  # render even when the estimated peak memory exceeds the machine's

    @property
    def batch(self) -> bool:
        """Several scenes with --jobs: a worker process per scene."""
        return self.jobs is not None and len(self.scenes) > 1

    @property
    def ranked(self) -> bool:
        return self.distributed or launched()


def check_request(req: RenderRequest) -> None:
    """Flags that cannot go together, refused before any scene loads."""
    if req.output and len(req.scenes) > 1:
        raise UsageError("--output names one film; with several scenes leave it out (each goes to renders/)")
    check_split(req.split, len(req.scenes))
    if req.ranked and req.batch:
        raise UsageError("--jobs renders scenes in processes of their own; under torchrun (--distributed) the "
                         "ranks share each capture instead: leave one of them out")
    if req.ranked and req.split > 1:
        raise UsageError("--split renders one film in several processes; under torchrun (--distributed) the "
                         "ranks share the capture and rank 0 renders the film whole: leave one of them out")


def render_batch(req: RenderRequest) -> int:
    """A worker process per scene, at most ``req.jobs`` at once (``jobs.pool``); every scene that cannot render (a
    scene error, a crash) is a failed row of the table, and the others render."""
    from .pool import LOG_DIR, render_batch as run_pool

    jobs = [Job(scene=p, quality=req.quality, format=req.format, frames=req.frames, device=req.device,
                no_cache=req.no_cache, force=req.force) for p in req.scenes]
    results = run_pool(jobs, req.jobs, progress=req.progress, device=req.device)
    print(format_table(results))
    print(f"each scene's log: {LOG_DIR}/<scene>.log")
    return batch_exit_code(results)


def render_scenes(req: RenderRequest, scenes: list) -> int:
    """Every (loaded) scene in this process, or in the ranks of a group; prints each film's path."""
    from ..pipeline import check_render
    from ..pipeline.checks import check_memory

    # A missing encoder, a format that cannot be honoured, an output path that cannot be written or frames the
    # film lacks stop the batch before training.
    fmts = [check_render(scene, req.output, req.format, req.frames, req.quality) for scene in scenes]
    for fmt in fmts:
        check_split(req.split, 1, fmt)
    # So does a capture that would not fit in memory (the formula only: cheap), unless --force.
    for scene in scenes:
        check_memory(scene, resolve_device(req.device or scene.capture.device), req.quality, req.force)
    if req.ranked:
        return _render_ranked(req, scenes)
    for scene, fmt in zip(scenes, fmts):
        print(_render_one(req, scene, film_split(req, fmt)))
    return 0


def film_split(req: RenderRequest, fmt: str) -> int:
    """Segments of one film: ``--split K``; or, for one scene with ``--jobs N``, N where its format can be split
    (a GIF renders whole); else 1."""
    if req.split > 1 or not req.jobs or len(req.scenes) != 1 or fmt not in SPLITTABLE:
        return req.split
    return req.jobs


def _render_one(req: RenderRequest, scene, split: int):
    from ..pipeline import capture_scene, render_film
    from .split import render_split

    prog = Progress(req.progress)
    prog.log(f"── {scene.source}")
    device = resolve_device(req.device or scene.capture.device)
    cap = capture_scene(scene, device=device, use_cache=not req.no_cache, progress=prog)
    if split > 1:  # the capture above is made once; the segment processes load it from the store
        return render_split(cap, split, scene_file=scene.source, output=req.output, quality=req.quality,
                            frames=req.frames, format=req.format, device=device.type, progress=prog)
    return render_film(cap, output=req.output, quality=req.quality, frames=req.frames, progress=prog,
                       format=req.format)


def _render_ranked(req: RenderRequest, scenes: list) -> int:
    """Every scene in turn, each capture shared by the ranks of the group the launcher describes (joined once,
    after every scene was checked); rank 0 renders and prints, the other ranks capture only. A failure on one rank
    is raised on every rank at the next meeting point; every rank then leaves the group and exits non-zero."""
    import torch  # this command's threads; torch is loaded by the pipeline anyway

    from ..pipeline import capture_scene, render_film
    from .slots import cpu_count

    kinds = {resolve_device(req.device or s.capture.device).type for s in scenes}
    if len(kinds) > 1:
        raise UsageError("torch.distributed: these scenes run on different devices (capture.device); pass --device "
                         "cpu or --device cuda so that every rank of the group uses the same kind")
    kind = kinds.pop()
    describe_environment()  # a missing or malformed variable: exit 2 on every rank, before any rank waits
    group = from_environment(kind)
    try:
        torch.set_num_threads(share_threads(group, cpu_count()))
        device = group.device(kind)
        for scene in scenes:
            prog = Progress(req.progress) if group.is_root else Progress("none")
            prog.log(f"── {scene.source} ({group.world} ranks)")
            cap = capture_scene(scene, device=device, use_cache=not req.no_cache, progress=prog, group=group)
            if group.is_root:
                print(render_film(cap, output=req.output, quality=req.quality, frames=req.frames, progress=prog,
                                  format=req.format))
    finally:
        group.destroy()
    return 0


def refuse_ranked(command: str) -> None:
    """``still`` and ``export`` run in one process."""
    if launched():
        raise UsageError(f"'{command}' runs in one process; under torchrun (WORLD_SIZE > 1) only 'render' shares a "
                         f"capture: run 'torchrun ... -m llstudio render SCENE' first, then '{command}' alone (it "
                         "reuses the cached capture)")
