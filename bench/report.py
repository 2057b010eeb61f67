"""The short markdown report of a benchmark run: throughput, scale latencies, the issue's targets."""

from __future__ import annotations

from typing import Any

from bench.load import BUSY_WARNING

UNEXPECTED = "Unexpected = wrong statuses + socket errors + server log problems."
SCALE_ROWS = (
    ("report_infection", "cold", "infection report, cold (after a write)"),
    ("report_infection", "cached", "infection report, cached"),
    ("report_resources", "cold", "resources report, cold (after a write)"),
    ("report_resources", "cached", "resources report, cached"),
    ("list_first_page", "cold", "first list page, cold"),
    ("list_first_page", "cached", "first list page, cached"),
    ("list_deep_page", "cold", "deep list page by number (direct jump), cold"),
    ("list_deep_page", "cached", "deep list page by number (direct jump), cached"),
    ("list_deep_page_cursor", "cold", "deep list page by the previous page's next link (cursor), cold"),
    ("list_deep_page_cursor", "cached", "deep list page by the previous page's next link (cursor), cached"),
    ("location_update", "write", "location update"),
)


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _throughput(results: dict[str, Any]) -> list[str]:
    if not results["ceilings"] and not any(run["scenarios"] for run in results["runs"]):
        return ["(--skip-load: no throughput scenarios were run, only the scale run.)"]
    lines = [
        "| server | scenario | status | req/s | rounds' spread | p50 ms | p99 ms | × ceiling "
        "| × same-shape ceiling | worker RSS MiB (max / sum) | unexpected |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    reference = results["reference_ceiling"]
    for label, ceiling in results["ceilings"].items():
        ratio = 1.0 if label == reference else None
        lines.append(
            f"| bare Flask, {label} | GET /ceiling | 200 | {_number(ceiling['requests_per_second'], 0)} "
            f"| {_percent(ceiling.get('spread'))} | {_number(ceiling['p50_ms'])} "
            f"| {_number(ceiling['p99_ms'])} | {_number(ratio)} | – "
            f"| {ceiling['rss_mb_max']} / {ceiling['rss_mb_sum']} | {ceiling['unexpected_status']} |"
        )
    for run in results["runs"]:
        server = f"API, {run['database']}{' + Redis' if run['redis'] else ''}, {run['shape']}"
        for name, result in run["scenarios"].items():
            unexpected = result["unexpected_status"] + result["socket_errors"] + result["log_problems"]
            lines.append(
                f"| {server} | {name} | {result['expect']} | {_number(result['requests_per_second'], 0)} "
                f"| {_percent(result.get('spread'))} | {_number(result['p50_ms'])} "
                f"| {_number(result['p99_ms'])} "
                f"| {_number(result.get('ratio'))} | {_number(result.get('ratio_same_shape'))} "
                f"| {result['rss_mb_max']} / {result['rss_mb_sum']} | {unexpected} |"
            )
    return lines


def _scale(results: dict[str, Any]) -> list[str]:
    runs = [run for run in results["runs"] if run.get("scale")]
    if not runs:
        return []
    lines = [
        "",
        "| database | survivors | request | p50 ms | p99 ms | samples |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for run in runs:
        scale = run["scale"]
        for measure, kind, title in SCALE_ROWS:
            stats = scale["measures"][measure][kind]
            lines.append(
                f"| {run['database']} | {scale['survivors']:,} | {title} | {_number(stats['p50_ms'])} "
                f"| {_number(stats['p99_ms'])} | {stats['samples']} |"
            )
    lines.append("")
    for run in runs:
        scale = run["scale"]
        lines.append(
            f"- {run['database']}: {scale['survivors']:,} survivors, bulk insert took "
            f"{scale['seed_seconds']:,.1f} s; deep page = page {scale['deep_page']:,} of 20, asked for by "
            f"number and by `{scale['deep_page_cursor']}`."
        )
    return lines


def _load_targets(scenarios: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The throughput targets: ratios to the ceiling, p99, worker RSS."""
    found: list[tuple[str, str, bool]] = []

    def ratio(name: str, floor: float) -> None:
        value = scenarios[name].get("ratio")
        if value is not None:
            found.append((f"{name} ≥ {floor}× ceiling", f"{value:.2f}×", value >= floor))

    ratio("list", 0.50)
    ratio("list_304", 0.55)
    ratio("invalid_token", 0.60)
    for name in ("list", "list_304", "invalid_token"):
        p99 = scenarios[name]["p99_ms"]
        found.append((f"{name} p99 ≤ 25 ms", f"{p99:.1f} ms", p99 <= 25))
    for name, result in scenarios.items():
        if "spread" in result and len(result.get("rounds", [])) > 1:
            found.append((f"{name}: rounds within 15%", f"{result['spread']:.0%}", result["spread"] <= 0.15))
    rss = max(result["rss_mb_max"] for result in scenarios.values())
    found.append(("worker RSS ≤ 150 MB (largest worker after any scenario)", f"{rss:.0f} MiB", rss <= 150))
    return found


def targets(run: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's targets for one run: (target, measured, met)."""
    found: list[tuple[str, str, bool]] = []
    scenarios = run["scenarios"]
    if scenarios:  # none under --skip-load
        found += _load_targets(scenarios)
    scale = run.get("scale")
    if scale:
        measures = scale["measures"]
        for name in ("report_infection", "report_resources"):
            cached, cold = measures[name]["cached"]["p50_ms"], measures[name]["cold"]["p50_ms"]
            found.append((f"{name} cached ≤ 5 ms (p50)", f"{cached:.1f} ms", cached <= 5))
            found.append((f"{name} uncached ≤ 200 ms (p50)", f"{cold:.1f} ms", cold <= 200))
        pages = [
            measures[name][kind]["p50_ms"]
            for name in ("list_first_page", "list_deep_page", "list_deep_page_cursor")
            for kind in ("cold", "cached")
        ]
        found.append(("any list page ≤ 20 ms (slowest p50)", f"{max(pages):.1f} ms", max(pages) <= 20))
        move = measures["location_update"]["write"]["p50_ms"]
        found.append(("location update ≤ 5 ms p50", f"{move:.1f} ms", move <= 5))
    return found


def markdown(results: dict[str, Any]) -> str:
    """The report as markdown: one throughput table, one scale table, the targets per run."""
    settings = results["settings"]
    load = (
        f"wrk -t{settings['wrk_threads']} -c{settings['connections']}, {settings['warmup']} s warm-up, "
        f"median of {settings['rounds']} x {settings['seconds']} s; "
        f"ratios to bare Flask on {results['reference_ceiling']}. {UNEXPECTED}"
    )
    if settings.get("skip_load"):
        load = f"scale run only (--skip-load), {settings['samples']} samples per measure."
    lines = [
        f"# Benchmark {results['started_at']}",
        "",
        f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}; {load}",
        "",
        *_throughput(results),
        *_scale(results),
    ]
    for run in results["runs"]:
        lines += [
            "",
            f"Targets (issues 7 and 13; set for the production shape, Redis and 2 workers, and reported "
            f"for the embedded default too) — {run['database']}"
            f"{' + Redis' if run['redis'] else ''}, {run['shape']}:",
            "",
            "| target | measured | met |",
            "|---|---:|---|",
        ]
        lines += [f"| {name} | {value} | {'yes' if met else '**no**'} |" for name, value, met in targets(run)]
    busy = [
        (where, name, result["background_cpu"])
        for where, scenarios in [("ceiling", results["ceilings"])]
        + [(run["database"], run["scenarios"]) for run in results["runs"]]
        for name, result in scenarios.items()
        if result.get("background_cpu", 0) > BUSY_WARNING
    ]
    if busy:
        lines += [
            "",
            "**Warning: the machine was busy with something else during** "
            + ", ".join(f"{where} {name} ({share:.0%} CPU)" for where, name, share in busy)
            + ": those numbers are skewed; run again on a quiet machine.",
        ]
    return "\n".join(lines) + "\n"
