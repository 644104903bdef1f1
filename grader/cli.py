"""`python -m grader …`: parses arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import selfcheck
from grader.config import load_config


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="rubric file (default: grader/rubric.toml)")
    p.add_argument("--epochs", type=int, help="epoch budget injected after the `parameters` cell")
    p.add_argument("--no-accel", action="store_true", help="stock slayer kernels (no compiled CPU kernels)")


def _config(args: argparse.Namespace):
    config = load_config(args.config)
    if args.no_accel:
        config = config.with_budget(accelerate=False)
    return config


def cmd_grade(args: argparse.Namespace) -> int:
    from grader.batch import BatchError, grade_batch
    from grader import roster
    from grader.samples import write_samples

    config = _config(args)
    paths, epochs, trusted = args.paths, args.epochs, args.unsandboxed
    class_list = None
    if args.roster is not None:  # read before grading: a bad roster is said now, not after the batch
        try:
            class_list = roster.read_roster(args.roster, roster.parse_columns(args.roster_columns))
        except roster.RosterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.roster_columns or args.export:
        print("error: --roster-columns and --export need --roster FILE (the class list: id, name, email)",
              file=sys.stderr)
        return 2
    if not paths:
        paths = [write_samples(args.out / "_samples")]
        epochs = epochs or config.budget.sample_epochs
        trusted = True  # the kit wrote these: no sandbox needed to run them
        print(f"no submissions given: grading the bundled samples at {epochs} epochs")
    try:
        summary = grade_batch(paths, args.out, config, epochs, args.workers, args.scheduler, args.regrade,
                              progress=not args.no_progress, unsandboxed=trusted)
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from grader.report import collect

    for r in collect(args.out):
        if r.is_grader_error:
            print(f"{r.submission_id:32s} {r.grader_error} (retried by the next run)")
        else:
            print(f"{r.submission_id:32s} {r.score:6g} / {r.max_score:g}  {'; '.join(r.flags)}")
    if summary.skipped:
        print(f"skipped (already graded): {', '.join(summary.skipped)}")
    for sid, err in summary.errors.items():
        print(f"grader error on {sid}:\n{err}", file=sys.stderr)
    if summary.calibration:
        print(summary.calibration)
    print(f"gradebook: {summary.gradebook}")
    if class_list is not None:
        entries = roster.join(collect(args.out), class_list)
        print(f"roster: {roster.summary(entries)} -> {roster.write_joined(entries, args.out / roster.ROSTER)}")
        if "canvas" in args.export:
            try:
                canvas = roster.write_canvas(entries, args.out / roster.CANVAS, args.canvas_assignment)
            except roster.RosterError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"canvas: {canvas} (assignment {args.canvas_assignment!r}; no grade left empty; "
                  "only roster students)")
        from grader.overview import write_overview

        write_overview(args.out)  # again, now linking roster.csv and canvas.csv
    print(f"overview: {args.out / 'index.html'}")
    return 1 if summary.errors else 0


def cmd_check(args: argparse.Namespace) -> int:
    from grader import selfcheck

    config = _config(args)
    epochs = args.epochs or config.budget.check_epochs
    return selfcheck.run_check(args.notebook, args.out, config, epochs)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from grader import calibration, fingerprint
    from solution import numerics

    config = _config(args)
    budgets = args.budgets or [config.budget.check_epochs, config.budget.sample_epochs, config.budget.epochs]
    verdict = fingerprint.check()
    print(f"numerical mode: {numerics.label()}; CPU: {numerics.cpu_model()}")
    if args.ship:
        from grader import trace

        print(f"fingerprint {verdict.local.digest[:16]} ({verdict.local.epochs} epochs) -> "
              f"{fingerprint.save(verdict.local)}")
        print(f"trace of its first {len(verdict.trace.epochs)} epochs ({sum(map(len, verdict.trace.epochs))} ops) "
              f"and {len(verdict.trace.losses)} losses -> {trace.save(verdict.trace)}")
    else:
        print(verdict.sentence)
    differ = 0
    for epochs in budgets:
        cal = calibration.compute(epochs, config.budget.seed, config.budget.accelerate)
        path = calibration.save(cal, calibration.SHIPPED if args.ship else calibration.local_folder())
        print(f"{epochs:5d} epochs: loss {cal.loss:.2f} (silent {cal.silent_loss:.2f}), "
              f"{cal.seconds_per_epoch:.4f} s/epoch -> {path}")
        if not args.ship:
            verdict_line, same = calibration.compare_with_shipped(cal)
            differ += not same
            print(f"             {verdict_line}")
    return 1 if differ and args.check else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grader", description="HW8 spike-to-spike autograder")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade submissions (folders, notebooks, zips, or folders of them)",
                       epilog="exit status: 0 every submission graded, 1 some not graded (grading machine "
                              "error: no score, retried by the next run), 2 the batch could not start")
    g.add_argument("paths", nargs="*", type=Path)
    g.add_argument("--out", type=Path, default=Path("grades"), help="output folder (default: grades/)")
    g.add_argument("--workers", type=int,
                   help="submissions graded at once, each in its own process (default: the cores available; "
                        "0: one at a time in this process, for debugging)")
    g.add_argument("--scheduler", help="address of a Dask scheduler to send the tasks to")
    g.add_argument("--regrade", action="store_true", help="grade again what is already graded")
    g.add_argument("--unsandboxed", action="store_true",
                   help="grade even where bubblewrap is missing: the submissions' code then runs with "
                        "resource limits only, with network and your files (you accept the risk)")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--roster", type=Path, metavar="FILE.csv",
                   help="the class list (CSV: id, name, email): writes OUT/roster.csv, the gradebook joined with it "
                        "(students without a submission, submissions not on the roster)")
    g.add_argument("--roster-columns", metavar="FIELD=COLUMN,...",
                   help="the roster's column names, e.g. id=student_id,name=full_name,email=mail "
                        "(section=COLUMN too; email= when there is none)")
    g.add_argument("--export", action="append", choices=["canvas"], default=[],
                   help="canvas: also write OUT/canvas.csv for Canvas's gradebook import (needs --roster)")
    g.add_argument("--canvas-assignment", default="HW8 problem 2", metavar="TITLE",
                   help="the assignment column of canvas.csv (default: %(default)s; 'TITLE (ID)' as in Canvas's "
                        "own export names an existing assignment by its id)")
    _common(g)
    g.set_defaults(func=cmd_grade)

    c = sub.add_parser("check", help="student self-check at a small budget",
                       description="Grade your notebook as the course does, at a small budget: prints each check, "
                                   "the score, how long the course budget takes, and where the feedback page is.",
                       epilog=selfcheck.EXIT_STATUSES)
    c.add_argument("notebook", nargs="?", type=Path, default=Path("assignment/train.ipynb"))
    c.add_argument("--out", type=Path, default=None,
                   help=f"where the feedback page, executed notebook and grader log go (default: "
                        f"{selfcheck.DEFAULT_OUT}/<the notebook's name>/, one folder per notebook)")
    _common(c)
    c.set_defaults(func=cmd_check)

    # `assign` is grader.assign's own CLI (--check, --solution, --output): main() hands it over.
    sub.add_parser("assign", help="regenerate assignment/train.ipynb from the solution (--check: verify)")

    k = sub.add_parser("calibrate", help="train the reference at the default budgets and store thresholds")
    k.add_argument("budgets", nargs="*", type=int)
    k.add_argument("--ship", action="store_true",
                   help="write into grader/calibration/ (shipped with the kit), with this machine's fingerprint")
    k.add_argument("--check", action="store_true",
                   help="exit 1 unless every budget reproduces the shipped calibration bit for bit")
    _common(k)
    k.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["assign"]:
        from grader import assign

        return assign.main(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
