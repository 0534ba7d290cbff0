"""TensorBoard event files, optional (`train.tensorboard=true`, the `tensorboard` extra).

The epoch driver (train/driver.py) hands every history row to one `EpochLogger`, so every
PyTorch kind of study (classifiers, the language model, the forecasters, transfer) logs the
same way without code of its own: each number of the row that history.csv holds becomes a
scalar at step = epoch.  `train_loss` and `val_loss` are logged as `loss/train` and `loss/val`
(TensorBoard groups tags by what precedes the slash), and a custom-scalars layout draws
training and validation on one chart, as plots/curves.png does.

Event files go to RUN_DIR/tensorboard/ (`tensorboard --logdir RUN_DIR/tensorboard`); a stage
with a history of its own (transfer learning's `history_head.csv`, `history_finetune.csv`)
gets a sub-folder named after it, which TensorBoard shows as a run of its own.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

EXTRA = "pip install 'deepstudy[tensorboard]'"  # or, from a checkout: pip install -e '.[tensorboard]'
SPLITS = ("train", "val")


def summary_writer_class():
    """torch's SummaryWriter, or a ConfigError naming the extra when TensorBoard is missing.
    torch.utils.tensorboard imports the `tensorboard` package itself, and fails without it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(f"train.tensorboard=true needs the tensorboard package: {EXTRA}") from None
    return SummaryWriter


def require() -> None:
    """Refuse train.tensorboard=true where TensorBoard is not installed: called when the
    configuration is checked, before any data is read or a run directory made."""
    summary_writer_class()


def log_dir(history: Path) -> Path:
    """RUN/tensorboard for RUN/history.csv; RUN/tensorboard/head for RUN/history_head.csv."""
    stage = history.stem.removeprefix("history").lstrip("_")
    return history.parent / "tensorboard" / stage if stage else history.parent / "tensorboard"


def tag(field: str) -> str:
    """history.csv's column -> TensorBoard's tag: val_accuracy -> accuracy/val, lr -> lr."""
    split, _, metric = field.partition("_")
    return f"{metric}/{split}" if split in SPLITS and metric else field


class EpochLogger:
    """Writes each epoch's history row as scalars.  Process 0 alone makes one (the driver
    decides); the event file is flushed after every epoch, before the checkpoint is saved."""

    def __init__(self, directory: Path, fields: list[str], done: list[dict]):
        """`done`: the rows of the epochs already trained (a resumed run's checkpoint holds them).
        TensorBoard is told to drop every earlier event (purge_step=1, a SessionLog START that
        TensorBoard and its EventAccumulator honour) and the rows are written again: the event
        files then hold exactly history.csv, no epoch twice (a run killed after an epoch's
        events but before its checkpoint repeats that epoch) and none missing (a run begun
        without TensorBoard)."""
        SummaryWriter = summary_writer_class()
        self.fields = [f for f in fields if f != "epoch"]
        self.writer = SummaryWriter(str(directory), purge_step=1 if done else None)
        # one chart per metric with training and validation together (the "Custom Scalars" tab)
        metrics: dict[str, list[str]] = {}
        for f in self.fields:
            metrics.setdefault(tag(f).split("/")[0], []).append(tag(f))
        self.writer.add_custom_scalars({"deepstudy": {m: ["Multiline", tags] for m, tags in metrics.items()
                                                      if len(tags) > 1}})
        for row in done:
            self.log(row)

    def log(self, row: dict) -> None:
        for f in self.fields:
            value = row.get(f)
            if isinstance(value, (int, float)) and not isinstance(value, bool):  # None: a regression's accuracy
                self.writer.add_scalar(tag(f), value, row["epoch"])
        self.writer.flush()  # on disk before the checkpoint says the epoch is done

    def close(self) -> None:
        self.writer.close()
