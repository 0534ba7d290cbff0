"""Every notebook runs top to bottom, in its smoke tier: the code cells are executed in order in
one namespace, with `TIER = "quick"` replaced by `"smoke"`."""

import ast
import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch, data_root):
    monkeypatch.chdir(tmp_path)  # runs/ is created here
    monkeypatch.setenv("DEEPSTUDY_DATA", str(data_root))
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    source = ["".join(c["source"]) for c in cells]
    assert any('TIER = "quick"' in s for s in source), "a notebook declares its tier in one place"
    namespace: dict = {}
    shown = []
    for i, text in enumerate(source):
        tree = ast.parse(text.replace('TIER = "quick"', 'TIER = "smoke"'))
        # Jupyter displays the value of a cell's last statement when it is an expression
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, f"{path.name}[{i}]", "exec"), namespace)
        if last is not None:
            shown.append(eval(compile(ast.Expression(last.value), f"{path.name}[{i}]", "eval"), namespace))
    assert any(isinstance(v, Figure) for v in shown), "the notebook shows at least one plot"
    assert list((tmp_path / "runs").iterdir()), "the notebook's runs wrote run directories"
