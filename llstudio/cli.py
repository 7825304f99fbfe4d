"""Command line: parse, load scenes, call the pipeline, turn LLStudioError into one message and an exit code.

The only module that calls ``sys.exit`` (through ``main``'s return value).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import Optional

from pathlib import Path

from . import __version__, allocator
from .config.presets import FORMATS as OUTPUT_FORMATS
from .config.presets import QUALITIES, format_help, quality_help
from .config.checks import format_problems
from .config.scene import json_schema, load_scene
from .device import resolve_device
from .doctor import run_checks
from .errors import (DiskFull, LLStudioError, SceneError, Terminated, UsageError, exit_on_late_signals,
                     raise_on_sigterm, restore_sigterm)
from .files import FILE, FOLDER, disk_full, require_writable, sweep_temp_files
from .output.export import FORMATS, default_directory, export, require
from .progress import Progress
from .store.store import CaptureStore

FILMS_FOLDER = Path("renders")  # where films go unless -o or output.path say otherwise

# The pipeline's capture and render stages load torch and VTK: each command imports what it calls from it, so that
# check, schema, cache and doctor start without them.


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quality", choices=list(QUALITIES), default=None,
                   help="quality preset (" + quality_help() + "); default: the scene's output.quality")
    _add_capture_options(p)


def _add_capture_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"],
                   help="where training and capture run; default: the scene's capture.device")
    p.add_argument("--no-cache", action="store_true",
                   help="ignore cached training and captures: recompute them (and refresh the cache)")
    p.add_argument("--progress", choices=["auto", "bar", "none", "json"], default="auto",
                   help="progress bars: on a terminal (auto), always (bar) or never (none); or one JSON line per "
                        "event on stderr for a program that watches the run (json)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llstudio", description="Cinematic loss-landscape films from scene files.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("render", help="train, capture and render scenes to films")
    p.add_argument("scenes", nargs="+", metavar="SCENE", help="scene files (.toml)")
    p.add_argument("-o", "--output", default=None, help="film path (only with a single scene); default: "
                   "the scene's output.path or renders/<scene>.mp4")
    p.add_argument("--frames", default=None, metavar="A:B", help="render only frames A … B-1")
    p.add_argument("--format", default=None, choices=list(OUTPUT_FORMATS),
                   help="file format (" + format_help() + "); default: the suffix of -o, else the scene's "
                   "output.format")
    p.add_argument("--split", type=_split_count, default=1, metavar="K",
                   help="render one film's frames in K processes at once and join the segments without "
                   "re-encoding (mp4, webm, prores, png); see README 'One film in segments'")
    p.add_argument("--distributed", action="store_true",
                   help="one rank of a capture shared through torch.distributed (implied when WORLD_SIZE > 1, as "
                   "under torchrun --nproc-per-node N -m llstudio render ...): each rank captures a share of the "
                   "steps or grid points on its own device, rank 0 writes the cache and renders")
    p.add_argument("--jobs", type=_job_count, default=None, metavar="N",
                   help="render N scenes at once, each in a process of its own with a share of the CPU cores (or a "
                   "GPU each); a failing scene does not stop the others, and the batch ends with one table. Logs: "
                   "renders/.logs/<scene>.log")
    p.add_argument("--force", action="store_true", help="render even when the capture's estimated peak memory "
                   "exceeds what the machine has (see llstudio check)")
    _add_common(p)

    p = sub.add_parser("still", help="render one frame of a scene's film to a PNG")
    p.add_argument("scene", metavar="SCENE")
    p.add_argument("--frame", type=int, default=None, help="frame index (negative counts from the end); default: "
                   "the scene's output.still, a fraction of the film between its cards (unset: the frame where the "
                   "last captured step arrives)")
    p.add_argument("--contact-sheet", type=int, default=None, metavar="N",
                   help="instead of one frame, one PNG grid of N stills spread over the film, labelled with frame "
                   "number and time (default path renders/<scene>_contact.png)")
    p.add_argument("-o", "--output", default=None, help="PNG path; default: renders/<scene>_<frame>.png")
    _add_common(p)

    p = sub.add_parser("export", help="write a scene's captured landscapes to files (ParaView, HDF5, numpy, Blender)",
                       description="Capture the scene (cached: usually instant) and write its landscapes: vts "
                       "(ParaView structured grids + a .pvd time series), h5 (Li et al.'s loss-landscape layout; "
                       "needs h5py), npz (every array, for numpy) or ply (coloured surface meshes, for Blender).")
    p.add_argument("scene", metavar="SCENE", help="scene file (.toml)")
    p.add_argument("-f", "--format", required=True, choices=list(FORMATS), help="file format")
    p.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="directory to write into; default: renders/<scene>_export")
    _add_capture_options(p)

    p = sub.add_parser("check", help="validate scenes, print the resolved scene and what rendering will cost")
    p.add_argument("scenes", nargs="+", metavar="SCENE")
    p.add_argument("-q", "--quality", choices=list(QUALITIES), default=None)
    p.add_argument("--quiet", action="store_true", help="only report problems (no calibration: faster)")
    p.add_argument("--force", action="store_true", help="do not report a capture that needs more memory than the "
                   "machine has (render --force renders it anyway)")

    sub.add_parser("schema", help="print the JSON Schema of scene files")
    sub.add_parser("doctor", help="check ffmpeg, the off-screen OpenGL backend and torch")

    p = sub.add_parser("cache", help="list, verify or clear cached captures")
    p.add_argument("action", choices=["list", "clear", "verify"],
                   help="verify: check every cache file and move the corrupt ones aside, so that the next render "
                   "recomputes them (exit 0 when the cache is sound or was repaired, 1 when a file could not be "
                   "moved)")
    p.add_argument("key", nargs="?", help="clear (or verify) only this capture")
    _add_submit_parser(sub)
    return parser


def _add_submit_parser(sub) -> None:
    p = sub.add_parser("submit", help="render scenes as one Slurm job array (submitit; pip install "
                       "'llstudio[slurm]')", description="Submit one job per scene as one job array and print the "
                       "job ids; --wait waits and prints the table of outcomes. The capture store (LLSTUDIO_CACHE) "
                       "and renders/ must be on a filesystem the nodes share. Preempted or timed-out jobs are "
                       "requeued and resume from the store.")
    p.add_argument("scenes", nargs="+", metavar="SCENE", help="scene files (.toml)")
    p.add_argument("--format", default=None, choices=list(OUTPUT_FORMATS),
                   help="file format (" + format_help() + "); default: the scene's output.format")
    p.add_argument("--cluster", default="slurm", choices=["slurm", "local", "debug"],
                   help="slurm (default), local (submitit's local executor: the same jobs as processes on this "
                   "machine, a dry run) or debug (with --wait: one after another in this process)")
    p.add_argument("--partition", default=None, help="Slurm partition (required with --cluster slurm)")
    p.add_argument("--gpus-per-job", type=int, default=1, metavar="N", help="GPUs per job (default 1; 0 for a "
                   "CPU partition)")
    p.add_argument("--cpus-per-job", type=int, default=None, metavar="N",
                   help="CPU cores per job (default: the partition's); torch, llvmpipe and x264 use them all")
    p.add_argument("--timeout-min", type=int, default=60, metavar="M",
                   help="time limit of each job in minutes (default 60); a job that reaches it is requeued and "
                   "resumes from the store")
    p.add_argument("--array-parallelism", type=int, default=None, metavar="K",
                   help="at most K jobs of the array run at once (default: submitit's, 256)")
    p.add_argument("--logs", default="renders/submit-logs", metavar="DIR",
                   help="folder of the jobs' logs and pickles, named by job id (default renders/submit-logs)")
    p.add_argument("--wait", action="store_true", help="wait for every job, then print the table of outcomes "
                   "(exit 1 when any failed)")
    _add_common(p)


def _job_count(text: str) -> int:
    """--jobs N: a whole number, at least 1 (argparse reports anything else, with exit status 2)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of scenes to render at once, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 scene at once, got {n}")
    return n


def _progress(args):
    return Progress(args.progress)


def _split_count(text: str) -> int:
    from .jobs.split import parse_split

    try:
        return parse_split(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_render(args) -> int:
    from .jobs import render as engines

    req = engines.RenderRequest(tuple(args.scenes), args.quality, args.format, args.frames, args.device,
                                args.output, args.no_cache, args.progress, args.jobs, args.split, args.distributed,
                                force=args.force)
    engines.check_request(req)
    if req.batch:  # each scene is loaded in its worker: an invalid one is its own failed row
        return engines.render_batch(req)
    return engines.render_scenes(req, _load_all(args.scenes))


def _refuse_ranked(command: str) -> None:
    from .jobs.render import refuse_ranked

    refuse_ranked(command)


def _device(args, scene):
    return resolve_device(args.device or scene.capture.device)


def _load_all(paths) -> list:
    """Load every scene first, so one bad file stops the batch before any work, with all problems listed."""
    scenes, errors = [], []
    for p in paths:
        try:
            scenes.append(load_scene(p))
        except SceneError as exc:
            errors.append(exc)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise SceneError(", ".join(e.path for e in errors),
                         [(f"{e.path}: {loc}" if loc else e.path, msg) for e in errors for loc, msg in e.problems])
    return scenes


def cmd_still(args) -> int:
    from .pipeline import capture_scene, render_contact_sheet, render_still

    _refuse_ranked("still")
    if args.contact_sheet is not None and args.contact_sheet < 1:
        raise UsageError(f"--contact-sheet {args.contact_sheet}: needs at least one still")
    (scene,) = _load_all([args.scene])
    _check_still_output(args, scene)
    cap = capture_scene(scene, device=_device(args, scene), use_cache=not args.no_cache, progress=_progress(args))
    if args.contact_sheet is not None:
        print(render_contact_sheet(cap, args.contact_sheet, output=args.output, quality=args.quality))
        return 0
    print(render_still(cap, args.frame, output=args.output, quality=args.quality))
    return 0


def _check_still_output(args, scene) -> None:
    """A frame the film lacks or a PNG path that cannot be written stops the command before any training. The
    default path of a single still depends on the film's frame count: its folder, renders/, is checked then."""
    from .pipeline import still_index

    if args.contact_sheet is None:
        still_index(scene, args.frame, args.quality)
    if args.output is not None:
        require_writable(Path(args.output), FILE, "the still")
    else:
        require_writable(FILMS_FOLDER, FOLDER, "the stills' folder")


def cmd_export(args) -> int:
    from .pipeline import capture_scene

    _refuse_ranked("export")
    (scene,) = _load_all([args.scene])
    require(args.format)  # a missing h5py is reported before any training
    directory = Path(args.output) if args.output else default_directory(scene)
    require_writable(directory, FOLDER, "the export folder")
    cap = capture_scene(scene, device=_device(args, scene), use_cache=not args.no_cache, progress=_progress(args))
    # A scene with panels exports every panel's capture, each under its own name (<scene>_panel<i>).
    for one in (cap.panels if scene.panels else [cap]):
        for path in export(one, args.format, directory):
            print(path)
    return 0


def cmd_check(args) -> int:
    # check says everything render would refuse: it builds the models (torch), but trains and renders nothing.
    from .pipeline import estimate
    from .pipeline.calibrate import capture_estimate
    from .pipeline.checks import check_scene

    errors = []
    for path in args.scenes:  # every scene's problems, a file that does not load included, in one report
        try:
            scene = load_scene(path)
            _check_formats([scene])
            checked = check_scene(scene, args.quality, args.force)
        except SceneError as exc:
            errors.append(exc)
            continue
        if args.quiet:
            continue
        cost = estimate(scene, args.quality)
        print(f"# {scene.source}: valid")
        print(json.dumps({"scene": scene.resolved_dump(), "cost": cost,
                          "estimate": capture_estimate(scene, args.quality, checked, cost)}, indent=2), flush=True)
    if errors:
        raise _all_problems(errors)
    return 0


def _check_formats(scenes) -> None:
    """Each scene against its own output.format (render checks the format the command line chooses instead)."""
    for scene in scenes:
        problems = [p for s in [scene, *(scene.panel_scenes() if scene.panels else [])] for p in format_problems(s)]
        if problems:
            raise SceneError(scene.source or "<scene>", problems[:1])


def _all_problems(errors: list) -> SceneError:
    """One SceneError listing every scene's problems; its exit status the worst of theirs (3: a missing dataset)."""
    if len(errors) == 1:
        return errors[0]
    combined = SceneError(", ".join(e.path for e in errors),
                          [(f"{e.path}: {loc}" if loc else e.path, msg) for e in errors for loc, msg in e.problems])
    combined.exit_code = max(e.exit_code for e in errors)
    return combined


def cmd_schema(args) -> int:
    print(json_schema())
    return 0


def cmd_doctor(args) -> int:
    worst = 0
    for name, ok, msg in run_checks():
        print(f"[{'ok' if ok else 'FAIL'}] {name:7s} {msg}")
        worst = worst if ok else 1
    return worst


def cmd_cache(args) -> int:
    store = CaptureStore()
    if args.action == "verify":
        return _cache_verify(store, args.key)
    if args.action == "list":
        rows = store.list()
        print(f"{len(rows)} capture(s) in {store.captures}")
        for key, manifest, size, problem in rows:
            scene = (manifest or {}).get("scene", "?") if not problem else f"corrupt manifest ({problem})"
            steps = (manifest or {}).get("steps", [])
            print(f"{key}  {size / 2**20:8.1f} MiB  {len(steps) if isinstance(steps, list) else 0:4d} steps  {scene}")
        runs, size = store.training_usage()
        if runs:
            print(f"and {runs} training run(s) that captures share, {size / 2**20:.1f} MiB, in {store.trainings}")
        return 0
    n = store.clear(args.key)
    # Killed renders' temporary films too, in the folder films go to by default (each render sweeps its own folder).
    swept = store.sweep() + sweep_temp_files(FILMS_FOLDER)
    print(f"removed {n} capture(s) from {store.captures}" + ("" if args.key else " and the training runs they share")
          + (f" and {len(swept)} stale temporary file(s) left by killed processes" if swept else ""))
    return 0


def _cache_verify(store: CaptureStore, key: Optional[str]) -> int:
    """``llstudio cache verify [KEY]``: 0 when the cache is sound or every corrupt file was moved aside, 1 when one
    could not be (it stays, and is reported again on the next read)."""
    entries, files, findings = store.verify(key)
    if key and not entries:
        raise UsageError(f"no capture or training run {key} in {store.root} (see 'llstudio cache list')")
    swept = store.sweep()
    print(f"checked {files} file(s) in {entries} capture(s) and training run(s) under {store.root}")
    for f in findings:
        done = (f"moved to {f.moved}" if f.moved else "removed") if f.repaired else "NOT REPAIRED: could not move it"
        print(f"corrupt: {f.path}: {f.problem}; {done}")
    if swept:
        print(f"removed {len(swept)} stale temporary or lock file(s) left by killed processes")
    bad = [f for f in findings if not f.repaired]
    if not findings:
        print("the cache is sound")
    else:
        print(f"repaired {len(findings) - len(bad)} of {len(findings)} corrupt file(s)"
              + ("; the next render recomputes them" if len(bad) < len(findings) else ""))
    return 1 if bad else 0


def cmd_submit(args) -> int:
    from .jobs import slurm
    from .jobs.job import batch_exit_code, format_table

    req = slurm.Request(cluster=args.cluster, partition=args.partition, gpus_per_job=args.gpus_per_job,
                        cpus_per_job=args.cpus_per_job, timeout_min=args.timeout_min,
                        array_parallelism=args.array_parallelism, logs=args.logs, wait=args.wait)
    slurm.check_request(req)  # bad flags, no submitit, no Slurm: before the scenes load, nothing written
    jobs = slurm.make_jobs(_load_all(args.scenes), args.quality, args.format, args.device, args.no_cache)
    sjobs = slurm.submit(req, jobs, progress=args.progress)  # the nodes' stage lines go to their logs
    for sj, path in zip(sjobs, args.scenes):
        print(f"{sj.job_id}  {path}")
    if not args.wait:
        print(slurm.follow_up(req, sjobs, jobs))
        return 0
    results = slurm.collect(sjobs, jobs, list(args.scenes), poll_s=10 if args.cluster == "slurm" else 1,
                            on_done=lambda r: print(f"{r.status}: {r.scene}", file=sys.stderr, flush=True))
    print(format_table(results))
    return batch_exit_code(results)


COMMANDS = {"render": cmd_render, "still": cmd_still, "check": cmd_check, "schema": cmd_schema,
            "doctor": cmd_doctor, "cache": cmd_cache, "export": cmd_export, "submit": cmd_submit}


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    # Training, capture and rendering free and reallocate the same multi-megabyte buffers all the time.
    allocator.tune()
    sigterm = raise_on_sigterm()  # a kill stops the command like Ctrl-C: clean-up, a message, exit 143
    try:
        return COMMANDS[args.command](args)
    except LLStudioError as exc:
        print(f"llstudio: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # A full disk where a write does not go through atomic_write (which says so itself): a lock, a folder.
        print(f"llstudio: error: {disk_full(exc.filename or '.', exc)}", file=sys.stderr)
        return DiskFull.exit_code
    except Terminated:
        print("llstudio: terminated (SIGTERM); nothing half-written was left behind, the next run resumes",
              file=sys.stderr)
        return Terminated.exit_code
    except KeyboardInterrupt:
        print("llstudio: interrupted; nothing half-written was left behind, the next run resumes", file=sys.stderr)
        return 130
    finally:
        restore_sigterm(sigterm)


def run() -> int:
    """The program's entry point (the ``llstudio`` command, ``python -m llstudio``): :func:`main`, after which a
    Ctrl-C or SIGTERM during the interpreter's teardown exits 130 or 143 at once instead of printing a traceback
    and exiting 0. ``main`` itself leaves the caller's handlers as they were."""
    code = main()
    exit_on_late_signals()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
