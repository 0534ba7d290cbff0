"""tools/tta_views.py: validation accuracy of a finished fastnet run under each test-time
augmentation; its 2-view number is the one the run itself recorded."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from conftest import make_cifar_jpeg

spec = importlib.util.spec_from_file_location("tta_views", Path(__file__).resolve().parents[1] / "tools" / "tta_views.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_views_reproduce_the_runs_validation_and_refuse_other_runs(tmp_path, capsys):
    from deepstudy import api

    make_cifar_jpeg(tmp_path / "data")
    common = dict(tier="smoke", data_dir=tmp_path / "data", progress=False, log=lambda m: None)
    r = api.run("cifar-fast", out=tmp_path / "fast", options={"train.epochs": 1}, **common)
    assert tool.main([str(r.run_dir), "--data-dir", str(tmp_path / "data")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    found = {m[1]: float(m[2]) for m in (re.search(r"tta=(\S+)\s+val ([\d.]+)%", line) for line in lines)}
    assert list(found) == ["none", "flip", "flip_translate"]
    # the loop evaluated the kept weights with the recipe's 2 views: the tool must agree
    assert abs(found["flip"] - 100 * r.metrics["val"]["accuracy"]) < 0.006

    other = api.run("mnist-mlp", out=tmp_path / "mlp", **{**common, "data_dir": None})
    assert tool.main([str(other.run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "(mlp) has no test-time views" in err
