"""`deepstudy compare` and `deepstudy report` on finished smoke-tier runs of real data: the
package's own MNIST and airline passengers, the generated Celsius line, and (when
../shared/datasets is there) TREC and tiny Shakespeare.

The HTML is checked twice: always by parsing it (every picture a PNG inside the file, the
sections there, the numbers those of metrics.json), and, where Chromium is installed, by
opening it in headless Chromium (every image decoded, no console message)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deepstudy import api
from deepstudy.cli import main
from deepstudy.report.html import png_size
from deepstudy.tasks import get_task
from deepstudy import recipes

from conftest import SHARED, assert_one_line_refusal, snapshot

PNG = b"\x89PNG\r\n\x1a\n"


def _run(recipe: str, out: Path, data_dir=None, **options):
    return api.run(recipe, tier="smoke", out=out, data_dir=data_dir, threads=1, progress=False,
                   log=lambda m: None, **options).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished runs: two LeNets that differ in their learning rate, a forecaster, a NumPy
    regression; TREC and Shakespeare when the shared data is there."""
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSTUDY_OFFLINE", "1")
        mp.setenv("DEEPSTUDY_CACHE", str(base / "cache"))
        mp.delenv("DEEPSTUDY_DATA", raising=False)
        out = {"lenet_a": _run("lenet5-mnist", base / "runs" / "lenet-a", epochs=2),
               "lenet_b": _run("lenet5-mnist", base / "runs" / "lenet-b", epochs=2, lr=0.01),
               "series": _run("airline-lstm", base / "runs" / "airline"),
               "linreg": _run("scratch-linreg", base / "runs" / "linreg")}
        if (SHARED / "trec").is_dir() and (SHARED / "tinyshakespeare").is_dir():
            out["text"] = _run("trec-lstm", base / "runs" / "trec", data_dir=SHARED, epochs=1)
            out["lm"] = _run("shakespeare-char-lstm", base / "runs" / "lm", data_dir=SHARED)
    return {k: Path(v) for k, v in out.items()}


def _needs_text(runs):
    if "text" not in runs:
        pytest.skip(f"real data not available: {SHARED}/trec and tinyshakespeare (set DEEPSTUDY_SHARED_DATA)")


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _score(run: Path):
    """The headline metric as the run's own task reads it (the test knows no metric names either)."""
    config = json.loads((run / "config.json").read_text())
    with open(run / "history.csv") as f:
        columns = next(csv.reader(f))
    return get_task(config["task"]).headline_score(recipes.get_recipe(config["recipe"]), _metrics(run), columns)


# ------------------------------------------------------------------ compare

def test_compare_prints_the_table_and_writes_the_curves(runs, tmp_path, capsys):
    plot = tmp_path / "curves.png"
    assert main(["compare", str(runs["lenet_a"]), str(runs["lenet_b"]), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    header, first, second = out.splitlines()[:3]
    assert "val accuracy" in header and "test accuracy" in header and "wall time" in header
    for line, run in ((first, runs["lenet_a"]), (second, runs["lenet_b"])):
        s = _score(run)
        assert line.startswith(run.name) and "lenet5-mnist" in line and "smoke" in line
        assert s.format(s.val) in line and s.format(s.test) in line
        assert _metrics(run)["hardware"] in line
    # the one option that differs, with each run's value; the rest counted as the same
    assert re.search(r"^optim\.lr\s+0\.002\s+0\.01$", out, re.M), out
    assert "options that differ (1;" in out
    assert f"validation curves: {plot}" in out
    data = plot.read_bytes()
    assert data.startswith(PNG) and png_size(data)[0] > 300


def test_compare_csv_keeps_the_numbers_of_metrics_json(runs, tmp_path, capsys):
    assert main(["compare", str(runs["lenet_a"]), str(runs["lenet_b"]), "--csv",
                 "--plot", str(tmp_path / "c.png")]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["run"] for r in rows] == [str(runs["lenet_a"]), str(runs["lenet_b"])]
    for row, run in zip(rows, (runs["lenet_a"], runs["lenet_b"])):
        m = _metrics(run)
        assert float(row["val"]) == m["val"]["accuracy"] and float(row["test"]) == m["test"]["accuracy"]
        assert int(row["epochs_run"]) == m["epochs_run"] == 2 and float(row["wall_seconds"]) == m["wall_seconds"]
    assert [r["optim.lr"] for r in rows] == ["0.002", "0.01"]
    assert "validation curves:" in err  # stdout holds only the CSV


def test_compare_markdown_is_a_table(runs, tmp_path, capsys):
    assert main(["compare", str(runs["lenet_a"]), str(runs["lenet_b"]), "--markdown",
                 "--plot", str(tmp_path / "c.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| run | recipe |") and lines[1].startswith("|---|")
    assert len([line for line in lines[2:4] if line.startswith("| lenet-")]) == 2
    assert "| optim.lr | 0.002 | 0.01 |" in lines


def test_compare_expands_a_quoted_glob_itself(runs, tmp_path, capsys):
    pattern = str(runs["lenet_a"].parent / "lenet-*")  # as `deepstudy compare 'runs/lenet-*'` passes it
    assert main(["compare", pattern, str(runs["lenet_a"]), "--csv", "--plot", str(tmp_path / "c.png")]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["run"] for r in rows] == [str(runs["lenet_a"]), str(runs["lenet_b"])]  # named twice, listed once


def test_runs_of_different_kinds_are_compared_on_what_they_share(runs, tmp_path, capsys):
    plot = tmp_path / "mixed.png"
    kinds = [runs["lenet_a"], runs["series"], runs["linreg"]]
    assert main(["compare", *map(str, kinds), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "note: these runs are of different kinds of study" in out
    assert "classification: lenet-a" in out and "forecast: airline" in out and "scratch: linreg" in out
    # each row names its own metric and shows it as its task formats it
    header = out.splitlines()[0]
    assert "metric" in header.split() and "val accuracy" not in header
    for line, run in zip(out.splitlines()[1:4], kinds):
        s = _score(run)
        assert s.label in line and s.format(s.val) in line and s.format(s.test) in line
    # only the options all of them have: no model.* option of one model beside another's
    comparison = api.compare(kinds)
    assert comparison.options and all(k.split(".")[0] in ("data", "model", "optim", "schedule", "train")
                                      for k in comparison.options)
    assert all(all(k in r.options for r in comparison.runs) for k in comparison.options)
    # one panel of curves per kind of curve: accuracy, a forecast's scaled loss, an RMSE
    fig = comparison.figure()
    assert len([ax for ax in fig.axes if ax.has_data()]) == 3


def test_api_compare_in_a_notebook(runs, tmp_path):
    c = api.compare([runs["lenet_a"], runs["lenet_b"]], plot=tmp_path / "p.png")
    assert c.plot == tmp_path / "p.png" and c.plot.read_bytes().startswith(PNG)
    html = c._repr_html_()
    assert html.count("<tr>") >= 3 and "optim.lr" in html
    # each run's training accuracy dashed beside its validation accuracy, in the run's colour,
    # at the values history.csv holds
    ax = c.figure().axes[0]
    for run in (runs["lenet_a"], runs["lenet_b"]):
        rows = list(csv.DictReader(open(run / "history.csv")))
        val = pytest.approx([100 * float(r["val_accuracy"]) for r in rows])
        solid = [ln for ln in ax.lines if ln.get_linestyle() == "-" and list(ln.get_ydata()) == val]
        dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--" and ln.get_color() == solid[0].get_color()]
        assert len(solid) == 1 and len(dashed) == 1
        assert list(dashed[0].get_ydata()) == pytest.approx([100 * float(r["train_accuracy"]) for r in rows])


# ------------------------------------------------------------------ the HTML report, parsed

class _Page(HTMLParser):
    """What a test asks of a page: its pictures, section ids, tables' cells, and anything that
    would reach outside the file."""

    def __init__(self):
        super().__init__()
        self.images: list[dict] = []
        self.ids: list[str] = []
        self.cells: list[str] = []
        self.scripts = 0
        self.outside: list[str] = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if "id" in a:
            self.ids.append(a["id"])
        if tag in ("script", "iframe", "object", "embed"):
            self.scripts += 1
        if tag == "link" or (tag in ("img", "source") and not a.get("src", "").startswith("data:")):
            self.outside.append(f"{tag} {a}")
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _parse(path: Path) -> tuple[_Page, str]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return page, text


def _check_images(page: _Page) -> list[bytes]:
    """Every picture is a PNG inside the page whose size is the one its tag states."""
    pngs = []
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix), img["src"][:60]
        data = base64.b64decode(img["src"][len(prefix):], validate=True)
        assert data.startswith(PNG) and png_size(data) == (int(img["width"]), int(img["height"]))
        pngs.append(data)
    return pngs


def test_the_report_of_an_image_run(runs, capsys):
    run = runs["lenet_b"]
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {run / 'report.html'}"
    page, text = _parse(run / "report.html")
    assert page.scripts == 0 and page.outside == [] and "http://" not in text and "https://" not in text
    for section in ("headline", "learning-curves", "confusion-matrices", "per-class", "most-confident-mistakes",
                    "sample-test-predictions", "the-data", "model", "configuration", "machine"):
        assert section in page.ids, section
    # every plot the run drew, each once, byte for byte
    pngs = _check_images(page)
    assert sorted(pngs) == sorted(p.read_bytes() for p in (run / "plots").glob("*.png"))
    # the headline: this run's numbers and the recipe's seed and published ones, beside the difference
    m, s, recipe = _metrics(run), _score(run), recipes.get_recipe("lenet5-mnist")
    cells = page.cells
    assert cells[cells.index("this run, test") + 1] == s.format(m["test"]["accuracy"])
    assert cells[cells.index("this run, validation") + 1] == s.format(m["val"]["accuracy"])
    published = cells.index("published (test)")
    assert cells[published + 1] == s.format(recipe.published.value)
    assert cells[published + 2] == f"{100 * (m['test']['accuracy'] - recipe.published.value):+.2f} points"
    # the per-class table is metrics.json's
    table = ["", "precision", "recall", "f1", "support"]
    for name, row in m["test"]["per_class"].items():
        table += [name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"])]
    start = cells.index("precision") - 1
    assert cells[start:start + len(table)] == table
    # the model summary, the options (the changed one marked with the recipe's value), versions
    assert (run / "summary.txt").read_text().splitlines()[1] in text
    lr = cells.index("optim.lr")
    epochs = cells.index("train.epochs")
    assert cells[lr + 1:lr + 3] == ["0.01", "0.002"] and cells[epochs + 1:epochs + 3] == ["2", "1"]
    # what the test set (api.run's lr, epochs and threads) and nothing else is marked as changed
    assert re.findall(r"<tr class=changed><td>([^<]+)</td>", text) == ["optim.lr", "train.epochs", "train.threads"]
    assert "3 options set differently from the recipe's smoke tier" in text
    config = json.loads((run / "config.json").read_text())
    for name, version in config["versions"].items():
        assert cells[cells.index(name) + 1] == str(version)


def test_the_report_of_other_kinds_shows_their_own_plots(runs):
    for kind, sections in (("series", ["learning-curves", "one-step-ahead", "free-running-forecast"]),
                           ("linreg", ["learning-curves", "the-fitted-model"])):
        run = runs[kind]
        path = api.report(run)
        assert path == run / "report.html"
        page, _ = _parse(path)
        assert all(s in page.ids for s in sections), (kind, page.ids)
        assert len(_check_images(page)) == len(list((run / "plots").glob("*.png")))
        assert "confusion-matrices" not in page.ids  # a section with nothing to show is left out
        s = _score(run)
        assert page.cells[page.cells.index("this run, test") + 1] == s.format(s.test)


def test_the_report_of_a_text_run_and_a_language_model(runs):
    _needs_text(runs)
    page, text = _parse(api.report(runs["text"]))
    # the mistakes as a table of whole questions, in place of the picture that cuts them
    mistakes = list(csv.DictReader(open(runs["text"] / "plots" / "confident_mistakes.csv")))
    assert mistakes and all(row["text"] in page.cells for row in mistakes)
    assert len(_check_images(page)) == len(list((runs["text"] / "plots").glob("*.png"))) - 1
    page, text = _parse(api.report(runs["lm"]))
    assert "samples" in page.ids and "learning-curves" in page.ids
    sample = (runs["lm"] / "samples.txt").read_text().splitlines()[0]
    assert sample.replace("'", "&#x27;") in text
    assert "loss (nats/char)" in page.cells


def test_a_report_written_elsewhere_and_a_plot_no_section_names(runs, tmp_path):
    """A plot added to a run later (say `deepstudy forecast`'s, or a user's own) appears too."""
    run = tmp_path / "run"
    shutil.copytree(runs["lenet_a"], run)
    shutil.copy(run / "plots" / "curves.png", run / "plots" / "my_own.png")
    out = tmp_path / "elsewhere.html"
    assert api.report(run, out=out) == out and not (run / "report.html").exists()
    page, _ = _parse(out)
    assert "more-plots" in page.ids and "plots/my_own.png" in [i["alt"] for i in page.images]


def test_the_report_of_several_runs_compares_them(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(runs["lenet_a"]), str(runs["lenet_b"]), str(runs["series"])]) == 0
    assert capsys.readouterr().out.strip() == "report: report.html"
    page, text = _parse(tmp_path / "report.html")
    assert len(_check_images(page)) == 1  # the curves
    assert "different kinds of study" in text and "optim.lr" in page.cells
    s = _score(runs["series"])
    assert s.format(s.test) in page.cells


# ------------------------------------------------------------------ the HTML report, in a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', images.filter(i => !i.complete || i.naturalWidth === 0).length);
});
</script>"""


def _open_in_chromium(page: Path, tmp_path: Path) -> tuple[int, int, list[str]]:
    """(images, images that did not decode, console messages) of `page` in headless Chromium.
    The probe goes into a copy: the report itself has no script."""
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                             "--v=0", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                            capture_output=True, text=True, timeout=120)
    body = re.search(r'<body data-images="(\d+)" data-broken="(\d+)"', result.stdout)
    assert body, (result.stdout[:500], result.stderr[-2000:])
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return int(body[1]), int(body[2]), console


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium): the parsed-HTML "
                                             "tests above still run")
def test_the_report_in_headless_chromium(runs, tmp_path):
    reports = [api.report(runs["lenet_b"]), api.report(runs["series"]),
               api.report([runs["lenet_a"], runs["lenet_b"]], out=tmp_path / "compare.html")]
    for report in reports:
        images, broken, console = _open_in_chromium(report, tmp_path)
        assert images == len(_parse(report)[0].images) > 0 and broken == 0, report
        assert console == [], console
    # the probe can fail: a cut-off PNG and a missing file are both counted as broken
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><img src='data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB'>"
                   "<img src='missing.png'></body></html>")
    assert _open_in_chromium(bad, tmp_path)[:2] == (2, 2)
    # and a screenshot renders
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,2000", reports[0].as_uri()],
                   capture_output=True, timeout=120)
    assert png_size(shot.read_bytes()) == (1200, 2000)


# ------------------------------------------------------------------ bad input: one line, exit 2, nothing written

@pytest.fixture(scope="module")
def bad(runs, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_runs")
    (base / "empty").mkdir()
    (base / "a_file").write_text("not a run")
    shutil.copytree(runs["lenet_a"], base / "unfinished")  # stopped before metrics.json was written
    (base / "unfinished" / "metrics.json").unlink()
    shutil.copytree(runs["lenet_a"], base / "cut_metrics")
    (base / "cut_metrics" / "metrics.json").write_text('{"recipe": "lenet5-mn')
    return base


CASES = [
    ("compare: a run and an empty folder", "compare {a} {bad}/empty", ["1 of 2", "empty", "no config.json"]),
    ("compare: runs and two non-runs", "compare {a} {bad}/a_file {b} {tmp}/nowhere",
     ["2 of 4", "a_file (is not a folder)", "nowhere (does not exist)"]),
    ("compare: a glob matching nothing", "compare {a} '{tmp}/runs-*'", ["runs-*", "does not exist"]),
    ("compare: an unfinished run", "compare {a} {bad}/unfinished", ["unfinished", "no metrics.json"]),
    ("compare: one run", "compare {a}", ["at least 2", "got 1"]),
    ("compare: no run", "compare", ["at least 2", "got none"]),
    ("compare: damaged metrics.json", "compare {a} {bad}/cut_metrics", ["metrics.json is damaged"]),
    ("compare: plot into a missing folder", "compare {a} {b} --plot {tmp}/no/c.png", ["--plot", "no folder"]),
    ("compare: markdown and csv", "compare {a} {b} --markdown --csv", ["not allowed with"]),
    ("report: a folder that is not a run", "report {bad}/empty", ["not a deepstudy run directory"]),
    ("report: no such folder", "report {tmp}/nowhere", ["does not exist"]),
    ("report: a file", "report {bad}/a_file", ["is not a folder"]),
    ("report: an unfinished run", "report {bad}/unfinished",
     ["unfinished", "deepstudy run lenet5-mnist --out", "--resume"]),
    ("report: damaged metrics.json", "report {bad}/cut_metrics", ["metrics.json is damaged"]),
    ("report: several, one not a run", "report {a} {b} {bad}/empty", ["1 of 3", "empty"]),
    ("report: no run", "report", ["needs a run directory"]),
    ("report: out into a missing folder", "report {a} --out {tmp}/no/r.html", ["no folder"]),
    ("report: out is a folder", "report {a} --out {tmp}", ["is a folder"]),
]


@pytest.mark.parametrize("line,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_ends_in_one_line_and_writes_nothing(runs, bad, tmp_path, capsys, monkeypatch, line, words):
    import shlex
    case = tmp_path / "case"
    case.mkdir()
    monkeypatch.chdir(case)  # where ./compare.png and ./report.html would go
    before = {k: snapshot(v) for k, v in runs.items()} | {"bad": snapshot(bad)}
    argv = [a.format(a=runs["lenet_a"], b=runs["lenet_b"], bad=bad, tmp=case) for a in shlex.split(line)]

    code = main(argv)

    out, err = capsys.readouterr()
    assert_one_line_refusal(code, out, err, words)
    assert out == "" and list(case.iterdir()) == [], "a refused command wrote something"
    assert {k: snapshot(v) for k, v in runs.items()} | {"bad": snapshot(bad)} == before
