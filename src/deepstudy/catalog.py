"""`deepstudy list`: the recipes beside the numbers to compare them with and the numbers we
measured (from measured.json, each with its tier, data and hardware)."""

from __future__ import annotations

from .recipes import list_recipes, measured


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def format_metric(metric: str, value) -> str:
    """Accuracies as percentages, anything else (loss in nats, RMSE, ...) as a plain number."""
    if value is None:
        return "—"
    if metric == "accuracy":
        return _pct(value)
    return f"{value:.4g} {metric}"


def _beside(metric: str, ours: dict) -> str:
    """What a forecast's number must be read against: the naive forecasts on the same test
    split, and for a synthetic series the variance of the noise that was added to it."""
    notes = [f"{label} {ours[key]:.4g}" for label, key in (
        ("noise floor", "test_noise_floor"), ("persistence", f"baseline_persistence_{metric}"),
        ("seasonal-naive", f"baseline_seasonal_naive_{metric}")) if ours.get(key) is not None]
    return f" ({', '.join(notes)})" if notes else ""


def catalog_rows(pattern: str = "*") -> list[dict]:
    found = measured()
    rows = []
    for r in list_recipes(pattern):
        m = found.get(r.name, {})
        best_tier = next((t for t in ("full", "quick", "smoke") if t in m and t != "smoke"), None)
        ours = m.get(best_tier) if best_tier else None
        rows.append({
            "name": r.name, "study": r.study, "dataset": r.dataset, "model": r.model,
            "seed": (format_metric(r.metric, r.seed.value) + (f" ({r.seed.split})" if r.seed.split != "test" else "")
                     if r.seed else "—"),
            "published": format_metric(r.metric, r.published.value) if r.published else "—",
            "published_source": r.published.source if r.published else "",
            "shows": r.shows or r.description,
            # the list's short form; a language model's number (and the published one) is on validation
            "ours": format_metric(r.metric, ours.get(f"{r.metric_split}_{r.metric}")) if ours else "—",
            "measured": (format_metric(r.metric, ours.get(f"{r.metric_split}_{r.metric}"))
                         + (f" ({r.metric_split})" if r.metric_split != "test" else "") + _beside(r.metric, ours)
                         if ours else "not yet run"),
            "measured_on": (f"{best_tier} tier, {ours['minutes']:.1f} min, {ours['hardware']}, {ours['date']}"
                            + (f", {ours['data_note']}" if ours.get("data_note") else "")) if ours else "",
            "target": format_metric(r.metric, r.target.get("quick")) if r.target.get("quick") else "—",
            "description": r.description,
        })
    return rows


SHOWS_WIDTH = 44  # keeps a line within 100 columns


def format_table(rows: list[dict]) -> str:
    """One line per recipe, under one header per study: the name, what it shows, our number and
    the published one.  `deepstudy show NAME` gives the sources, the machine and the settings."""
    name_w = max(len("recipe"), *(len(r["name"]) for r in rows))
    ours_w = max(len("ours"), *(len(r["ours"]) for r in rows))
    out = [f"{'recipe':<{name_w}}  {'what it shows':<{SHOWS_WIDTH}}  {'ours':>{ours_w}}  published"]
    study = None
    for r in sorted(rows, key=lambda r: (r["study"], r["name"])):
        if r["study"] != study:
            study = r["study"]
            out.append(f"-- {study}")
        shows = r["shows"] if len(r["shows"]) <= SHOWS_WIDTH else r["shows"][:SHOWS_WIDTH - 1] + "…"
        out.append(f"{r['name']:<{name_w}}  {shows:<{SHOWS_WIDTH}}  {r['ours']:>{ours_w}}  {r['published']}")
    return "\n".join(out)


def format_recipe(row: dict) -> str:
    """Everything `deepstudy list` leaves out, for one recipe (the head of `deepstudy show`)."""
    lines = [f"{row['name']}: {row['shows']}", f"  {row['description']}",
             f"  study {row['study']}; dataset {row['dataset']}; model {row['model']}",
             f"  seed: {row['seed']}",
             f"  published: {row['published']}" + (f" ({row['published_source']})" if row["published_source"] else ""),
             f"  ours: {row['measured']}" + (f" ({row['measured_on']})" if row["measured_on"] else "")]
    return "\n".join(lines)


def format_markdown(rows: list[dict]) -> str:
    out = ["| study | recipe | dataset | model | seed | published | ours | measured on |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: (r["study"], r["name"])):
        pub = r["published"] + (f" ({r['published_source']})" if r["published_source"] else "")
        out.append(f"| {r['study']} | `{r['name']}` | {r['dataset']} | {r['model']} | {r['seed']} | {pub} | "
                   f"{r['measured']} | {r['measured_on']} |")
    return "\n".join(out)
