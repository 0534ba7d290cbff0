"""Checkpoints: plain dicts of tensors and numbers, written atomically, loadable with
torch.load(weights_only=True) so opening one never runs code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import RunDirError
from ..io import atomic_path, torch_load_safely


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, device="cpu") -> dict:
    if not Path(path).is_file():
        raise RunDirError(f"no checkpoint at {path}: nothing to resume")
    try:
        return torch_load_safely(path, map_location=device)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise RunDirError(f"checkpoint {path} is damaged or truncated ({type(e).__name__}); "
                          f"cannot resume from it") from None


def save_weights(path: Path, model: torch.nn.Module, metadata: dict[str, str] | None = None) -> None:
    # safetensors refuses tensors that share memory; clone() gives each its own storage
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: Path, model: torch.nn.Module, device="cpu") -> None:
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"weights file {path} is damaged or unreadable ({e})") from None
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunDirError(f"weights in {path} do not fit the model its config describes ({first})") from None


def rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["data"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_training_state(path: Path, *, epoch: int, finished: bool, model: torch.nn.Module, optimizer, scheduler,
                        generator: torch.Generator, **progress) -> None:
    """Everything a training loop needs to go on after `epoch` as if it had never stopped:
    weights, optimizer and schedule state, random generators, and `progress`, the loop's own
    bookkeeping (history, best score so far, ...)."""
    save_checkpoint(path, {
        "epoch": epoch, "finished": finished, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {}, "rng": rng_state(generator),
        **progress,
    })


def restore_training_state(path: Path, model: torch.nn.Module, optimizer, scheduler, generator: torch.Generator,
                           device="cpu") -> dict:
    """Load what save_training_state wrote back into the live objects; returns the checkpoint
    (its epoch, finished flag and the loop's bookkeeping)."""
    state = load_checkpoint(path, device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"], generator)
    return state
