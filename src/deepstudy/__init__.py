"""deepstudy: the classic deep-learning studies, end to end on real data."""

__version__ = "0.1.0"


def run(*args, **kwargs):
    """Train a recipe: `run("lenet5-mnist", epochs=2)` -> Result (see deepstudy.api.run)."""
    from .api import run as _run
    return _run(*args, **kwargs)


def load_run(path):
    """Open a finished run directory as a Result."""
    from .api import load_run as _load_run
    return _load_run(path)


__all__ = ["run", "load_run", "__version__"]
