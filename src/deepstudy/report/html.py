"""`deepstudy report`: one self-contained HTML file per run (or per comparison of runs).

Everything is inside the file — the plots as base64 PNG data URIs, the style sheet inline, no
script — so it opens offline, can be mailed or attached to an issue, and shows the same next
year.  It is written once for every kind of study: it shows whatever plots/*.png, tables and
text the run directory holds, grouped under the sections its Task names (Task.report_sections);
a plot no section names still appears, under "More plots".  The page is built with f-strings
and html.escape: every value that came from a file is escaped.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import os
import shlex
import struct
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..errors import UserError, shown
from ..io import read_csv, write_text
from ..rundir import RunDir
from .compare import Comparison, RunSummary, duration, expand, finished_runs, show_value, summarize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TABLE_ROWS = 40  # a CSV shown as a table: the file beside the plot has the rest

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1120px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
.sub { color: #555; margin-top: 0; }
.headline { font-size: 18px; background: #f3f6fa; border-left: 4px solid #2c6fbb; padding: 10px 14px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; }
th, td { border: 1px solid #d8d8d8; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.changed td { background: #fff6d6; }
figure { display: inline-block; margin: 8px 16px 16px 0; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: 13px; }
pre { background: #f7f7f7; padding: 10px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; }
.note { color: #555; } .warn { color: #a04000; }
nav a { margin-right: 12px; } footer { color: #888; font-size: 13px; margin-top: 40px; }
"""


# ------------------------------------------------------------------ writing

def report(args: Sequence[str | os.PathLike], out: str | os.PathLike | None = None) -> Path:
    """Write the report of one finished run (default RUN_DIR/report.html) or the comparison of
    several (default ./report.html); return its path.  Nothing is written when an argument is
    not a finished run."""
    paths = expand(args)
    if len(paths) == 1:
        run = RunDir.finished(paths[0])
        page = run_page(summarize(run))
        target = Path(out) if out is not None else run.path / "report.html"
    else:
        comparison = Comparison([summarize(r) for r in finished_runs(paths, "report")])
        page = comparison_page(comparison)
        target = Path(out) if out is not None else Path("report.html")
    return write_page(target, page)


def write_page(target: Path, page: str) -> Path:
    if target.is_dir():
        raise UserError(f"{shown(str(target))} is a folder; --out takes the HTML file to write")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {shown(str(target))}: no folder {shown(str(target.parent))}")
    try:
        write_text(target, page)
    except PermissionError:
        raise UserError(f"cannot write {shown(str(target))}: permission denied; choose another place with --out FILE") \
            from None
    return target


# ------------------------------------------------------------------ one run

def run_page(r: RunSummary) -> str:
    saved = r.config
    title = f"{r.name} — {saved.get('tier', '?')} tier"
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class='sub'>{_e(saved.get('task', '?'))} · {_e(_describe_data(saved))} · run directory "
             f"<code>{_e(str(r.path.resolve()))}</code></p>"]
    sections: list[tuple[str, str, str]] = [("headline", "Headline", _headline(r))]

    shown_files: set[str] = set()
    for section in r.task.report_sections(saved):
        body = _section(r, section, shown_files)
        if body:
            sections.append((_anchor(section.title), section.title, body))
    others = [f"plots/{p.name}" for p in sorted((r.path / "plots").glob("*.png")) if f"plots/{p.name}" not in shown_files]
    if others:
        sections.append(("more-plots", "More plots", "".join(_figure(r.path, f) for f in others)))
    if (r.path / "summary.txt").is_file():
        sections.append(("model", "The model", f"<pre>{_e(_read_text(r.path / 'summary.txt'))}</pre>"))
    sections.append(("configuration", "Configuration", _configuration(r)))
    sections.append(("machine", "Hardware and versions", _machine(r)))

    nav = "<nav>" + "".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t, _ in sections) + "</nav>"
    body = "".join(f"<section id='{a}'><h2>{_e(t)}</h2>{b}</section>" for a, t, b in sections)
    return _page(title, "".join(parts) + nav + body)


def _describe_data(saved: dict) -> str:
    data = saved.get("data", {})
    sizes = data.get("sizes") or {}
    text = str(data.get("name", "?"))
    if sizes:
        text += " (" + " / ".join(f"{n:,} {s}" for s, n in sizes.items() if isinstance(n, int)) + ")"
    return f"{saved.get('config', {}).get('model', {}).get('name', '?')} on {text}"


def _headline(r: RunSummary) -> str:
    """The task's own headline line, then the run's number beside the recipe's seed and published ones."""
    score, m, recipe = r.score, r.metrics, r.recipe
    out = []
    if recipe is not None:
        try:
            out.append(f"<p class='headline'>{_e(r.task.headline(recipe, m))}</p>")
        except (KeyError, TypeError, NotImplementedError):  # metrics.json of an older shape
            pass
    ours = {"val": score.val, "test": score.test, "train": (m.get("train") or {}).get(score.metric)}
    best, ran = m.get("best_epoch"), m.get("epochs_run")
    rows = [("this run, test", score.format(score.test), "", "the weights kept on validation, tested once"),
            ("this run, validation", score.format(score.val), "",
             f"epoch {best} of {ran}" + (" (stopped early)" if m.get("stopped_early") else "") if best else "")]
    for what, ref in (("seed", getattr(recipe, "seed", None)), ("published", getattr(recipe, "published", None))):
        if ref is None or ref.value is None:
            rows.append((what, "—", "", ref.source if ref is not None else "none recorded"))
            continue
        rows.append((f"{what} ({ref.split})", score.format(ref.value), score.difference(ours.get(ref.split), ref.value),
                     ref.source))
    tier = r.config.get("tier")
    target = getattr(recipe, "target", {}).get(tier) if recipe is not None else None
    if target is not None:
        split = getattr(recipe, "metric_split", "test")
        rows.append((f"{tier}-tier target ({split})", score.format(target), score.difference(ours.get(split), target),
                     "what this tier is expected to reach"))
    better = "higher" if score.higher_is_better else "lower"
    table = _table([score.label, "value", "this run minus it", "source"], rows, numeric={1, 2})
    note = f"<p class='note'>{_e(score.label)}: {better} is better.</p>"
    if m.get("data_note"):
        note += f"<p class='warn'>data: {_e(m['data_note'])}</p>"
    return "".join(out) + table + note


def _section(r: RunSummary, section, shown_files: set[str]) -> str:
    parts = []
    for name in section.files:
        path = r.path / name
        if not path.is_file():
            continue
        shown_files.add(name)
        if name.endswith(".png"):
            parts.append(_figure(r.path, name))
        elif name.endswith(".csv"):
            parts.append(_csv_table(path, name))
        else:
            parts.append(f"<pre>{_e(_read_text(path))}</pre>")
    if section.table:
        data = _lookup(r.metrics, section.table)
        if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
            columns = list(next(iter(data.values())))
            parts.append(_table(["", *columns], [[k, *(_number(v.get(c)) for c in columns)] for k, v in data.items()],
                                numeric=set(range(1, len(columns) + 1))))
    if not parts:
        return ""
    shown_files.update(section.instead_of)
    note = f"<p class='note'>{_e(section.note)}</p>" if section.note else ""
    return note + "".join(parts)


def _lookup(metrics: dict, dotted: str):
    value = metrics
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _figure(run_path: Path, name: str) -> str:
    data = (run_path / name).read_bytes()
    size = png_size(data)
    if size is None:  # a damaged plot spoils no more than its own place on the page
        return f"<p class='warn'>{_e(name)} is not a readable PNG ({len(data):,} bytes); left out</p>"
    w, h = size
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f"<figure><img src='{uri}' width='{w}' height='{h}' alt='{_e(name)}'>"
            f"<figcaption>{_e(name)}</figcaption></figure>")


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when the bytes are not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _csv_table(path: Path, name: str) -> str:
    rows = read_csv(path)
    if not rows:
        return f"<p class='note'>{_e(name)}: empty</p>"
    columns = list(rows[0])
    cut = f" (the first {MAX_TABLE_ROWS} of {len(rows)})" if len(rows) > MAX_TABLE_ROWS else ""
    return (f"<p class='note'>{_e(name)}{cut}</p>"
            + _table(columns, [[_number(row[c]) for c in columns] for row in rows[:MAX_TABLE_ROWS]],
                     numeric={i for i, c in enumerate(columns) if isinstance(rows[0][c], (int, float))}))


def _configuration(r: RunSummary) -> str:
    """Every resolved option; the ones that differ from the recipe's tier (the user's --set) marked."""
    defaults = {}
    if r.recipe is not None:
        try:
            from ..config import flat
            from ..tasks import resolve
            defaults = flat(resolve(r.recipe, r.config.get("tier", r.recipe.default_tier)).as_dict())
        except UserError:  # the catalog changed since: show the settings unmarked
            defaults = {}
    rows, changed = [], 0
    for key, value in r.options.items():
        differs = bool(defaults) and show_value(defaults.get(key)) != show_value(value)
        changed += differs
        rows.append(([key, show_value(value), show_value(defaults.get(key)) if differs else ""], differs))
    tier = _e(r.config.get("tier", ""))
    intro = "" if not defaults else (
        f"<p class='note'>every option as the recipe's {tier} tier sets it</p>" if not changed else
        f"<p class='note'>{changed} option{'s' if changed != 1 else ''} set differently from the recipe's {tier} "
        f"tier (highlighted, with the recipe's value beside)</p>")
    columns = ("option", "value", "the recipe's")[:3 if changed else 2]  # no empty column when nothing changed
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    body = "".join(f"<tr{' class=changed' if differs else ''}>"
                   + "".join(f"<td>{_e(c)}</td>" for c in cells[:len(columns)]) + "</tr>" for cells, differs in rows)
    command = r.config.get("command")
    line = f"<p>command: <code>{_e(shlex.join(map(str, command)))}</code></p>" if command else ""
    return intro + line + f"<table>{head}{body}</table>"


def _machine(r: RunSummary) -> str:
    c, m = r.config, r.metrics
    model = c.get("model", {})
    rows = [("hardware", c.get("hardware")), ("device", c.get("device")), ("processes", c.get("processes")),
            ("threads", c.get("threads")), ("started", c.get("started")),
            ("training time", duration(m.get("train_seconds"))), ("wall time", duration(m.get("wall_seconds"))),
            ("parameters", f"{model['trainable']:,} trainable, {model.get('non_trainable', 0):,} non-trainable"
             if isinstance(model.get("trainable"), int) else None),
            ("data", (c.get("data") or {}).get("source") or m.get("data_source")),
            ("data root", c.get("data_root"))]
    rows += [(name, version) for name, version in (c.get("versions") or {}).items()]
    return _table(["", ""], [(k, "—" if v is None else str(v)) for k, v in rows if v is not None and v != ""])


# ------------------------------------------------------------------ several runs

def comparison_page(cmp: Comparison) -> str:
    title = f"Comparison of {len(cmp.runs)} runs"
    curves = _figure_bytes(cmp.figure())
    links = "".join(f"<li>{_e(r.label)}: {_e(r.name)}, <code>{_e(str(r.path.resolve()))}</code>"
                    + (f" — <a href='{_e((r.path / 'report.html').resolve().as_uri())}'>its report</a>"
                       if (r.path / "report.html").is_file() else "") + "</li>" for r in cmp.runs)
    body = (f"<h1>{_e(title)}</h1>{comparison_tables(cmp)}"
            f"<h2>Validation curves</h2><p class='note'>★: the epoch whose weights were kept and tested</p>"
            f"<figure><img src='data:image/png;base64,{base64.b64encode(curves).decode('ascii')}' "
            f"width='{png_size(curves)[0]}' height='{png_size(curves)[1]}' alt='validation curves'></figure>"
            f"<h2>The runs</h2><ul>{links}</ul>")
    return _page(title, body)


def comparison_tables(cmp: Comparison) -> str:
    """The compare table, the options that differ, and the notes, as HTML."""
    numeric = {i for i, h in enumerate(cmp.header()) if h.startswith(("val", "test", "epochs", "wall"))}
    out = _table(cmp.header(), cmp.rows(), numeric=numeric)
    out += f"<p>{_e(cmp.options_line())}</p>"
    if cmp.options:
        out += _table(["option", *(r.label for r in cmp.runs)], cmp.option_rows())
    out += "".join(f"<p class='warn'>note: {_e(n)}</p>" for n in cmp.notes)
    return out


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


# ------------------------------------------------------------------ pieces

def _page(title: str, body: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}"
            f"<footer>written by deepstudy {_e(__version__)} on {stamp}; self-contained: every picture is "
            f"inside this file</footer></body></html>\n")


def _table(header: Sequence[str], rows, numeric: set[int] = frozenset()) -> str:
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{_e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _number(value) -> str:
    if isinstance(value, float):  # one number of decimals down a column, so the digits line up
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return "—" if value is None else str(value)


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _e(value) -> str:
    return html.escape(shown(str(value)), quote=True)
