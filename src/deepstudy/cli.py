"""The `deepstudy` command.

    deepstudy list [PATTERN] [--markdown]
    deepstudy run [NAME] [--config FILE.toml | --from RUN_DIR] [--tier smoke|quick|full] [--epochs N] [--batch-size N] [--lr X] [--seed N]
                       [--set key=value ...] [--data-dir DIR] [--out DIR] [--device cpu|cuda]
                       [--weights PATH] [--resume] [--summary] [--tensorboard]
    deepstudy eval RUN_DIR [--split val|test]
    deepstudy predict RUN_DIR FILE_OR_TEXT... [--json] [--top K]
    deepstudy generate RUN_DIR [--prompt TEXT] [--length N] [--temperature T] [--top-k K] [--seed N]
    deepstudy forecast RUN_DIR [--steps N] [--json]
    deepstudy export RUN_DIR [--format onnx|torchscript|npz] [--out FILE] [--data-dir DIR]
    deepstudy compare RUN_DIR... [--plot FILE] [--markdown | --csv]
    deepstudy report RUN_DIR... [--out FILE]
    deepstudy gradcheck [--seed N]

A user's mistake ends in one line on stderr and exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import UserError, shown

DEFAULT_RECIPE = "lenet5-mnist"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"deepstudy: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deepstudy", description="The classic deep-learning studies, end to end on real data.")
    p.add_argument("--version", action="version", version=f"deepstudy {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ls = sub.add_parser("list", help="the catalog of recipes with published and measured numbers")
    ls.add_argument("pattern", nargs="?", default="*",
                    help="part of a recipe's name ('trec'), or a glob ('cifar-*-mini')")
    ls.add_argument("--markdown", action="store_true", help="print a Markdown table (the README's catalog)")

    sh = sub.add_parser("show", help="a recipe's sources, measured number and resolved settings, without training")
    sh.add_argument("name", help="recipe name")
    sh.add_argument("--tier", choices=["smoke", "quick", "full"], help="the tier to resolve (default: the recipe's)")
    sh.add_argument("--set", dest="assignments", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                    help="dotted overrides, as for `run`")
    sh.add_argument("--json", action="store_true", help="print only the resolved settings, as JSON")

    r = sub.add_parser("run", help="train a recipe and write a run directory")
    r.add_argument("name", nargs="?", help=f"recipe name (default: the --config file's `recipe`, the --from run's, "
                                           f"else {DEFAULT_RECIPE})")
    r.add_argument("--tier", choices=["smoke", "quick", "full"], help="smoke: seconds; quick (default): minutes on a CPU; full: the published schedule")
    r.add_argument("--epochs", type=int)
    r.add_argument("--batch-size", type=int)
    r.add_argument("--lr", type=float)
    r.add_argument("--seed", type=int)
    r.add_argument("--threads", type=int, help="CPU compute threads (train.threads; default: as many as cores that "
                   "other work leaves free)")
    r.add_argument("--set", dest="assignments", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any option, e.g. --set model.hidden=256,128 optim.name=sgd")
    r.add_argument("--config", metavar="FILE", help="a TOML (or YAML) file of options, e.g. [train] epochs = 5; "
                                                   "--set and the flags override it")
    r.add_argument("--from", dest="from_run", metavar="RUN_DIR",
                   help="run again what RUN_DIR ran (its config.json), into a new run directory; --set and the "
                        "flags change what they name")
    r.add_argument("--data-dir", help="data root (default: $DEEPSTUDY_DATA, else the per-user cache)")
    r.add_argument("--out", help="run directory (default runs/NAME-TIMESTAMP)")
    r.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present, else CPU)")
    r.add_argument("--weights", help="transfer-learning recipes: the backbone's pretrained weights, a state dict "
                                     "(.pth), a .safetensors file or a run directory (= --set transfer.weights=PATH)")
    r.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    r.add_argument("--summary", action="store_true", help="print the model summary before training")
    r.add_argument("--tensorboard", action="store_true", help="TensorBoard event files in RUN_DIR/tensorboard/ "
                   "(= --set train.tensorboard=true; needs pip install 'deepstudy[tensorboard]')")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")

    e = sub.add_parser("eval", help="evaluate a finished run's model on a split")
    e.add_argument("run_dir")
    e.add_argument("--split", choices=["val", "test"], default="test")
    e.add_argument("--data-dir")
    e.add_argument("--device")

    pr = sub.add_parser("predict", help="classify image files (or, with a text run, sentences) with a run's model")
    pr.add_argument("run_dir")
    pr.add_argument("files", nargs="+", metavar="FILE_OR_TEXT",
                    help="image files; for a text run, the sentences themselves, e.g. \"Who wrote Hamlet?\"; "
                         "for scratch-linreg temperatures in Celsius, for scratch-mlp-toy points x,y")
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    pr.add_argument("--top", type=int, default=3)
    pr.add_argument("--device")

    g = sub.add_parser("generate", help="sample text from a language-model run")
    g.add_argument("run_dir")
    g.add_argument("--prompt", default="", help="the text to continue (default: a line break)")
    g.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    g.add_argument("--temperature", type=float, default=0.8,
                   help="below 1: safer, repetitive; above 1: wilder (default 0.8)")
    g.add_argument("--top-k", type=int, default=0, help="sample only among the K likeliest characters (0: all)")
    g.add_argument("--seed", type=int, default=0, help="the same seed gives the same text")
    g.add_argument("--device")

    fc = sub.add_parser("forecast", help="forecast past the end of a forecasting run's series")
    fc.add_argument("run_dir")
    fc.add_argument("--steps", type=int, default=24, help="how many steps ahead (default 24: two years of months)")
    fc.add_argument("--json", action="store_true", help="one JSON object per step")
    fc.add_argument("--data-dir")
    fc.add_argument("--device")
    ex = sub.add_parser("export", help="write a finished run's model as ONNX or TorchScript (NumPy runs: .npz), "
                                       "checked against the model on the run's own data")
    ex.add_argument("run_dir")
    ex.add_argument("--format", help="onnx (needs the export extra) or torchscript for PyTorch runs, npz for "
                                     "the NumPy ones (default: onnx, or npz)")
    ex.add_argument("--out", help="the file to write (default RUN_DIR/export/model.onnx, .pt or .npz); "
                                  "the check's numbers go beside it as FILE.json")
    ex.add_argument("--data-dir", help="where the run's data is now, if not where it was trained from")
    cp = sub.add_parser("compare", help="finished runs side by side: a table and their validation curves")
    cp.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run directories; globs such as 'runs/lenet5-*' "
                    "are expanded here too, so they work quoted")
    cp.add_argument("--plot", default="compare.png", metavar="FILE",
                    help="where the overlaid validation curves are written (default ./compare.png)")
    fmt = cp.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="the table in Markdown, for pasting")
    fmt.add_argument("--csv", action="store_true", help="one CSV row per run, numbers unformatted")

    rp = sub.add_parser("report", help="a self-contained HTML report of a run, or a comparison of several")
    rp.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="one run directory, or several (globs welcome)")
    rp.add_argument("--out", metavar="FILE", help="the HTML file (default RUN_DIR/report.html for one run, "
                    "./report.html for several)")

    gc = sub.add_parser("gradcheck", help="check the NumPy layers' and losses' gradients against finite differences")
    gc.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights checked")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        return {"list": cmd_list, "show": cmd_show, "run": cmd_run, "eval": cmd_eval, "predict": cmd_predict,
                "generate": cmd_generate, "forecast": cmd_forecast, "export": cmd_export,
                "compare": cmd_compare, "report": cmd_report, "gradcheck": cmd_gradcheck}[args.command](args)
    except UserError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from process 0, not one per process
            print(f"deepstudy: error: {shown(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `deepstudy list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("deepstudy: interrupted" + (f"; continue with: deepstudy run {args.name} --out {args.out} --resume"
                                          if args.command == "run" and args.out else ""), file=sys.stderr)
        return 130


def cmd_list(args) -> int:
    from .catalog import catalog_rows, format_markdown, format_table
    rows = catalog_rows(args.pattern)
    if not rows:
        raise UserError(f"no recipe matches {args.pattern!r}")
    print(format_markdown(rows) if args.markdown else format_table(rows))
    return 0


def cmd_show(args) -> int:
    import json

    from . import recipes
    from .catalog import catalog_rows, format_recipe
    from .config import flat, parse_assignments
    from .tasks import resolve
    r = recipes.get_recipe(args.name)
    tier = args.tier or r.default_tier
    cfg = resolve(r, tier, parse_assignments(pair for group in args.assignments for pair in group))
    if args.json:
        print(json.dumps(cfg.as_dict(), indent=2))
        return 0
    row = next(row for row in catalog_rows(r.name) if row["name"] == r.name)
    print(format_recipe(row))
    print(f"  task {r.task}; tiers smoke, quick, full (default {r.default_tier})")
    print(f"settings at the {tier} tier{' with your --set' if args.assignments else ''} "
          f"(`deepstudy run` takes the same --tier and --set):")
    for key, value in flat(cfg).items():
        shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
        print(f"  {key} = {shown}")
    return 0


def cmd_run(args) -> int:
    from .api import run
    from .config import parse_assignments
    options = parse_assignments(pair for group in args.assignments for pair in group)
    if args.weights is not None:
        options["transfer.weights"] = args.weights
    if args.tensorboard:
        options["train.tensorboard"] = True
    common = dict(tier=args.tier, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  device=args.device, threads=args.threads, options=options, data_dir=args.data_dir, out=args.out,
                  progress=not args.no_progress, show_summary=args.summary, command=_launcher() + sys.argv[1:])
    if args.from_run:
        from .api import run_from
        for flag, given in (("--resume", args.resume), ("--config", args.config)):
            if given:
                raise UserError(f"--from starts a new run from another run's settings; {flag} cannot go with it")
        result = run_from(args.from_run, recipe=args.name, **common)
    else:
        name = args.name
        if name is None and args.config:
            from .config import read_settings_file
            name = read_settings_file(args.config).get("recipe")
        result = run(name or DEFAULT_RECIPE, config_file=args.config, resume=args.resume, **common)
    if result.config:  # under torchrun, only rank 0 has a finished run to point at
        print(f"run directory: {result.run_dir}")
    return 0


def _launcher() -> list[str]:
    """How this process was started, for config.json: `deepstudy`, or torchrun's command."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return ["torchrun", f"--nnodes={int(os.environ['WORLD_SIZE']) // int(os.environ.get('LOCAL_WORLD_SIZE', 1))}",
                f"--nproc_per_node={os.environ.get('LOCAL_WORLD_SIZE', 1)}", "-m", "deepstudy"]
    return ["deepstudy"]


def _device(name):
    from .train.loop import pick_device
    return pick_device(name or "auto")


def _finished_run(path: str):
    """A finished run directory and the task that reads it."""
    from .rundir import RunDir
    from .tasks import get_task
    run = RunDir.open(path)
    saved = run.read_config()
    return run, saved, get_task(saved["task"])


def cmd_eval(args) -> int:
    run, saved, task = _finished_run(args.run_dir)
    out = task.evaluate(run, args.split, run.data_root(args.data_dir), _device(args.device),
                        log=lambda m: print(m, file=sys.stderr))
    print(task.format_evaluation(saved["recipe"], out))
    return 0


def cmd_predict(args) -> int:
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    run, _, task = _finished_run(args.run_dir)
    items = task.predict(run, args.files, _device(args.device), top=args.top)
    for item in items:
        if args.json:
            print(json.dumps(item))
        elif "error" not in item:
            print(task.format_prediction(item))
        else:  # each input that could not be read, on its own line; the others are predicted
            print(f"deepstudy: error: {task.format_prediction(item)}", file=sys.stderr)
    failed = sum("error" in item for item in items)
    if failed and args.json:
        print(f"deepstudy: error: {failed} of {len(items)} inputs could not be read (the objects with an \"error\")",
              file=sys.stderr)
    return 2 if failed else 0


def cmd_generate(args) -> int:
    run, _, task = _finished_run(args.run_dir)
    text = task.generate(run, args.prompt, args.length, args.temperature, args.top_k, args.seed, _device(args.device))
    print(args.prompt + text)
    return 0


def cmd_forecast(args) -> int:
    run, _, task = _finished_run(args.run_dir)
    out = task.forecast(run, args.steps, run.data_root(args.data_dir), _device(args.device),
                        log=lambda m: print(m, file=sys.stderr))
    for row in out["forecast"]:
        value = "not a number (overflow)" if row["forecast"] is None else f"{row['forecast']:.{out['decimals']}f}"
        print(json.dumps(row) if args.json else f"{row['time']}  {value}")
    if not args.json:
        print(f"{len(out['forecast'])}-step forecast ({out['unit'] or 'series units'}); plot: {out['plot']}, "
              f"numbers: {out['csv']}")
    return 0


def cmd_export(args) -> int:
    from .export import ExportCheckError, export
    try:
        r = export(args.run_dir, args.format, out=args.out, data_dir=args.data_dir,
                   log=lambda m: print(m, file=sys.stderr))
    except ExportCheckError as e:  # not the user's mistake, but one line all the same: nothing was written
        print(f"deepstudy: export failed: {e}", file=sys.stderr)
        return 1
    what = {"onnx": f"ONNX opset {r.get('opset')}", "torchscript": "TorchScript", "npz": "NumPy arrays"}[r["format"]]
    print(f"{r['file']} ({what}, {r['bytes'] / 1024:,.0f} KB): max abs difference {r['max_abs_diff']:.2g} "
          f"from the model (limit {r['tolerance']:g}) on {r['inputs']['source']}, run through {r['checked_with']}; "
          f"details in {r['file']}.json")
    return 0


def cmd_compare(args) -> int:
    from .api import compare
    comparison = compare(args.run_dirs, plot=args.plot)
    if args.csv or args.markdown:  # stdout holds only what is to be pasted
        print(comparison.csv() if args.csv else comparison.markdown(), end="\n" if args.markdown else "")
        print(f"validation curves: {comparison.plot}", file=sys.stderr)
    else:
        print(comparison.text())
        print(f"validation curves: {comparison.plot}")
    return 0


def cmd_report(args) -> int:
    from .api import report
    if not args.run_dirs:
        raise UserError("report needs a run directory (or several, for a comparison)")
    print(f"report: {report(args.run_dirs, out=args.out)}")
    return 0


def cmd_gradcheck(args) -> int:
    from .scratch.gradcheck import STEP, TOLERANCE, check_all, format_checks
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    checks = check_all(args.seed)
    print(f"Backward passes of deepstudy.scratch against central finite differences (float64, h = {STEP:g}).\n"
          f"relative error = |analytic - numerical| / (|analytic| + |numerical|); ok below {TOLERANCE:g}\n")
    print(format_checks(checks))
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} gradients ok" + (f"; {len(failed)} FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
