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
            "measured": (format_metric(r.metric, ours.get(f"{r.metric_split}_{r.metric}"))
                         + (f" ({r.metric_split})" if r.metric_split != "test" else "") + _beside(r.metric, ours)
                         if ours else "not yet run"),
            "measured_on": (f"{best_tier} tier, {ours['minutes']:.1f} min, {ours['hardware']}, {ours['date']}"
                            + (f", {ours['data_note']}" if ours.get("data_note") else "")) if ours else "",
            "target": format_metric(r.metric, r.target.get("quick")) if r.target.get("quick") else "—",
            "description": r.description,
        })
    return rows


def format_table(rows: list[dict]) -> str:
    cols = [("name", "recipe"), ("dataset", "dataset"), ("model", "model"), ("seed", "seed"),
            ("published", "published"), ("measured", "ours (test)")]
    widths = {k: max(len(title), *(len(str(r[k])) for r in rows)) for k, title in cols}
    out = ["  ".join(f"{title:<{widths[k]}}" for k, title in cols)]
    study = None
    for r in rows:
        if r["study"] != study:
            study = r["study"]
            out.append(f"-- {study}")
        out.append("  ".join(f"{str(r[k]):<{widths[k]}}" for k, _ in cols))
        if r["measured_on"]:
            out.append(f"{'':<{widths['name']}}  measured: {r['measured_on']}")
        if r["published_source"]:
            out.append(f"{'':<{widths['name']}}  published: {r['published_source']}")
    return "\n".join(out)


def format_markdown(rows: list[dict]) -> str:
    out = ["| study | recipe | dataset | model | seed | published | ours | measured on |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: (r["study"], r["name"])):
        pub = r["published"] + (f" ({r['published_source']})" if r["published_source"] else "")
        out.append(f"| {r['study']} | `{r['name']}` | {r['dataset']} | {r['model']} | {r['seed']} | {pub} | "
                   f"{r['measured']} | {r['measured_on']} |")
    return "\n".join(out)
