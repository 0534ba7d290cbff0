"""Kinds of study.  Each module here is one kind (classification, language_model, forecast,
sine, transfer, scratch): a Task subclass registered under the name a recipe's `task` gives.
tasks/base.py says what a Task provides; tasks/runner.py runs any of them."""

from .base import (TASKS, Built, ExportSample, RunContext, Score, Section, Task, get_task, predict_each,
                   register_task, resolve, saved_config, shown)

__all__ = ["TASKS", "Built", "ExportSample", "RunContext", "Score", "Section", "Task", "get_task", "predict_each",
           "register_task", "resolve", "saved_config", "shown"]
