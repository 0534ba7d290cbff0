"""`deepstudy export`: a finished run's model as a file another program can run, checked before
it is kept.

    onnx         torch.onnx.export (the torch.export-based exporter), run back through
                 onnxruntime: any language, no PyTorch needed (the `export` extra installs them)
    torchscript  torch.jit.trace, loaded back with torch.jit.load: PyTorch without deepstudy
    npz          the NumPy recipes: their weights (and the input encoding) as NumPy arrays

Written once for every kind of study: the task says what its model takes and gives (its
`export_sample`: the model in eval mode, real batches of the run's own validation split, input
and output names, the axes that may vary); this module writes the file, runs it on those
batches, and keeps it only if every output agrees with the PyTorch (or NumPy) model's within
TOLERANCE.  The numbers go beside the file as FILE.json.
"""

from __future__ import annotations

import copy
import hashlib
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import RunDirError, UserError
from .io import atomic_path, write_json
from .rundir import RunDir, versions

FILES = {"onnx": "model.onnx", "torchscript": "model.pt", "npz": "model.npz"}
TOLERANCE = 1e-4  # max |exported - PyTorch| over every output value of every checked batch
EXTRA = "pip install 'deepstudy[export]' (in a checkout: pip install -e '.[export]')"


class ExportCheckError(Exception):
    """The exported file does not compute what the model does: nothing was kept."""


def export(run_dir, format: str | None = None, out=None, data_dir=None, log=print) -> dict:
    """Export the run in `run_dir` as `format` (default: the first its kind offers) to `out`
    (default RUN_DIR/export/model.<ext>), check it, and return what export.json records."""
    run = RunDir.open(run_dir)
    saved = run.read_config()
    from .tasks import get_task
    task = get_task(saved["task"])
    format = format or task.export_formats[0]
    if format not in FILES:
        raise UserError(f"unknown export format {format!r}: one of {', '.join(FILES)}")
    if not run.metrics.is_file():
        # the weights on disk are the best *so far*, not the ones the finished run chose
        raise RunDirError(f"{run.path} is an unfinished run (no metrics.json); finish it first: "
                          f"deepstudy run {saved.get('recipe', 'NAME')} --out {run.path} --resume")
    if format not in task.export_formats:
        offered = " or ".join(task.export_formats)
        kind = "NumPy" if "npz" in task.export_formats else "PyTorch"
        raise UserError(f"{run.path} holds a {kind} run ({saved.get('recipe')}): it exports as --format {offered}, "
                        f"not {format}")
    if format == "onnx":
        require_onnx()
    target = Path(out) if out is not None else run.path / "export" / FILES[format]
    if target.is_dir():
        raise UserError(f"--out {target} is a folder: name the file to write")

    started = time.time()
    sample = task.export_sample(run, run.data_root(data_dir), log)  # reads the weights: a damaged file stops here
    reference = [_numpy(out) for out in _reference_outputs(sample)]
    made_folder = not target.parent.exists()
    try:
        with atomic_path(target) as tmp:
            try:
                record = WRITERS[format](sample, tmp, reference)
            except (UserError, ExportCheckError):
                raise
            except Exception as e:  # the exporter could not handle this model (a user's own net, say)
                said = " ".join(str(e).split())
                others = " or ".join(f for f in task.export_formats if f != format)
                raise ExportCheckError(f"the {format} exporter failed on {run.path}'s model ({type(e).__name__}: "
                                       f"{said[:300]}{'...' if len(said) > 300 else ''}); nothing was kept"
                                       + (f"; --format {others} may work" if others else "")) from e
            diffs = [max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
                         for a, b in zip(got, want)) for got, want in zip(record.pop("outputs"), reference)]
            worst = max(diffs)
            if not worst <= TOLERANCE:  # written so that NaN fails too
                raise ExportCheckError(f"the {format} export of {run.path} does not match the model: max abs "
                                       f"difference {worst:.3g} > {TOLERANCE:g} on the {sample.source}; nothing was kept")
            size, digest = tmp.stat().st_size, _sha256(tmp)
        record = {"format": format, "file": str(target), "bytes": size, "sha256": digest,
                  "recipe": saved.get("recipe"), "task": saved.get("task"), "run_dir": str(run.path),
                  **record,
                  "inputs": {"names": sample.input_names, "varying_axes": _axes(sample), "source": sample.source,
                             "shapes": [{n: list(x.shape) for n, x in zip(sample.input_names, batch)}
                                        for batch in sample.inputs]},
                  "outputs": {"names": sample.output_names},
                  "max_abs_diff": worst, "max_abs_diff_per_batch": diffs, "tolerance": TOLERANCE,
                  "seconds": round(time.time() - started, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "versions": {**versions(), **_export_versions(format)}}
        write_json(sidecar(target), record)
    except BaseException:
        if made_folder and target.parent.is_dir() and not any(target.parent.iterdir()):
            target.parent.rmdir()  # a failed export leaves no empty export/ folder behind
        raise
    return record


def sidecar(target: Path) -> Path:
    """Where the check's numbers go: beside the file, named after it (model.onnx.json)."""
    return target.with_name(target.name + ".json")


def require_onnx() -> None:
    """The ONNX exporter needs onnx and onnxscript, the check onnxruntime: an optional extra."""
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UserError(f"--format onnx needs {', '.join(missing)}, not installed here: {EXTRA}")


# ------------------------------------------------------------------ one writer per format
# Each writes the file at `path`, reads it back as another program would, runs it on every
# checked batch and returns {"outputs": [[array per output] per batch], ...what export.json adds}.

def _onnx(sample, path: Path, reference) -> dict:
    import onnx
    import onnxruntime as ort
    import torch
    from torch.export import Dim

    dims: dict[str, Dim] = {}  # one Dim per name: every input's "batch" is the same size
    shapes = tuple({axis: dims.setdefault(name, Dim(name)) for axis, name in axes.items()} for axes in sample.dynamic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals say nothing to a user
        # each input its own copy: torch.export takes one tensor passed twice (a zero state as both
        # h and c) for one input, and the file would then ignore the second
        example = tuple(x.clone() for x in sample.inputs[0])
        _forget_recurrent_kernels()
        program = torch.onnx.export(sample.model, example, dynamo=True, dynamic_shapes=shapes,
                                    input_names=sample.input_names, output_names=sample.output_names, verbose=False)
    program.save(str(path))
    proto = onnx.load(str(path))
    if _relax_output_shapes(proto, reference):
        onnx.save(proto, str(path))
    onnx.checker.check_model(str(path))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's notes on graph optimisation are not for the user
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    outputs = []
    for batch in sample.inputs:
        feed = {n: np.asarray(x) for n, x in zip(sample.input_names, batch) if n in wanted}
        try:
            outputs.append(session.run(None, feed))
        except Exception as e:  # onnxruntime's own errors (a size the file took for fixed): the check failed
            shapes = ", ".join(f"{n} {list(x.shape)}" for n, x in feed.items())
            said = " ".join(str(e).split())  # onnxruntime's message spans lines: one line, all of it
            raise ExportCheckError(f"the ONNX file does not run on a checked batch ({shapes}): {said}; "
                                   f"nothing was kept") from None
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return {"outputs": outputs, "opset": opset, "exporter": "torch.onnx.export(dynamo=True)",
            "checked_with": f"onnxruntime {ort.__version__} (CPUExecutionProvider)"}


def _forget_recurrent_kernels() -> None:
    """Why: torch (2.14) caches the kernel it picked for aten.lstm/gru/rnn while exporting one
    model, and the next export in the same process (a notebook, the tests) traces through it
    with the first model's sequence length fixed; the file then refuses every other length.
    Clearing the ops' dispatch caches makes each export trace afresh.  (The check would catch
    it; this keeps it from happening.)"""
    import torch
    for name in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        packet = getattr(torch.ops.aten, name, None)
        for overload in ("input", "data"):
            cache = getattr(getattr(packet, overload, None), "_dispatch_cache", None)
            if cache is not None:
                cache.clear()


def _relax_output_shapes(proto, reference) -> bool:
    """Mark as variable each declared output size that the real outputs show varying.  Why: the
    exporter writes the example's sequence length into an LSTM's output shape as if it were
    fixed, and onnxruntime then warns at every other length (the values are right).  The
    intermediate shapes carry the same mistake; they are optional hints, so they go, and
    onnxruntime infers them from the operators."""
    changed = False
    for i, output in enumerate(proto.graph.output):
        seen = [out[i].shape for out in reference]
        for axis, dim in enumerate(output.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and any(s[axis] != dim.dim_value for s in seen):
                dim.dim_param = f"{output.name}_{axis}"  # setting dim_param clears dim_value
                changed = True
    if changed:
        del proto.graph.value_info[:]
    return changed


def _torchscript(sample, path: Path, reference) -> dict:
    import torch
    with warnings.catch_warnings():
        # torch marks TorchScript deprecated in favour of torch.export (whose files are ONNX's
        # input here); it still loads in any PyTorch without deepstudy, which is why it is offered
        warnings.simplefilter("ignore")
        # check_trace=False: torch's own check re-traces one input; ours below runs every batch,
        # of other sizes and lengths, through the file as saved
        traced = torch.jit.trace(sample.model, sample.inputs[0], check_trace=False)
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        outputs = [[_numpy(o) for o in _tuple(loaded(*batch))] for batch in sample.inputs]
    return {"outputs": outputs, "exporter": "torch.jit.trace", "checked_with": f"torch.jit.load (torch {torch.__version__})"}


def _npz(sample, path: Path, reference) -> dict:
    model = sample.model
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to the temporary name
        np.savez(f, **model.params, **sample.extras)
    # a fresh copy of the network with its weights wiped, given the file's: it must predict the same
    fresh = copy.deepcopy(model)
    for p in fresh.params.values():
        p[...] = 0
    with np.load(path, allow_pickle=False) as saved:
        fresh.load({k: saved[k] for k in model.params})
    outputs = [[fresh.forward(*batch)] for batch in sample.inputs]
    return {"outputs": outputs, "arrays": {"weights": sorted(model.params), "input_encoding": sorted(sample.extras)},
            "checked_with": "numpy.load into a fresh network"}


WRITERS = {"onnx": _onnx, "torchscript": _torchscript, "npz": _npz}


# ------------------------------------------------------------------ helpers

def _reference_outputs(sample) -> list[tuple]:
    """What the trained model computes on each checked batch."""
    model = sample.reference or sample.model
    if not hasattr(model, "parameters"):  # a NumPy network
        return [(model.forward(*batch),) for batch in sample.inputs]
    import torch
    with torch.inference_mode():
        return [_tuple(model(*batch)) for batch in sample.inputs]


def _tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _numpy(outputs) -> list[np.ndarray]:
    if isinstance(outputs, (tuple, list)):
        return [_numpy(o) for o in outputs]
    return outputs.detach().cpu().numpy() if hasattr(outputs, "detach") else np.asarray(outputs)


def _axes(sample) -> dict:
    return {n: {str(a): v for a, v in axes.items()} for n, axes in zip(sample.input_names, sample.dynamic)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _export_versions(format: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for package in {"onnx": ("onnx", "onnxscript", "onnxruntime")}.get(format, ()):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out
