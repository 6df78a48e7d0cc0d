"""The report: one JSON document and one table, with each target met or missed and by how much."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.heavy import HeavyResult
from bench.pipeline_run import PipelineResult, percentile
from bench.reference import ReferenceResult


@dataclass(frozen=True)
class Target:
    row: str
    what: str
    #: reads the measured value from the report
    value: Callable[[dict[str, Any]], float]
    #: ">=" or "<="
    op: str
    target: float
    unit: str

    def check(self, report: dict[str, Any]) -> dict[str, Any]:
        value = float(self.value(report))
        met = (operator.ge if self.op == ">=" else operator.le)(value, self.target)
        # headroom (+) or shortfall (-) relative to the target
        margin = ((value - self.target) if self.op == ">=" else (self.target - value)) / (
            self.target or 1.0)
        return {"row": self.row, "what": self.what, "value": round(value, 3), "op": self.op,
                "target": self.target, "unit": self.unit, "met": met,
                "margin_pct": round(100 * margin, 1)}


def _ratio(a: str, b: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: r["throughput"][a] / r["throughput"][b] if r["throughput"][b] else 0.0


TARGETS = (
    Target("throughput", "pipeline / limit", _ratio("pipeline_fps", "limit_fps"), ">=", 0.8, "x"),
    Target("throughput", "pipeline / baseline", _ratio("pipeline_fps", "baseline_fps"), ">=",
           3.0, "x"),
    Target("lag", "p99 upload -> searchable", lambda r: r["lag"]["p99_s"], "<=", 2.0, "s"),
    Target("bridge", "bridge / raw loop",
           lambda r: r["bridge"]["bridge_eps"] / r["bridge"]["raw_eps"], ">=", 0.8, "x"),
    Target("overhead", "CPU outside extraction", lambda r: r["overhead_cpu_ms_per_file"], "<=",
           10.0, "ms/file"),
    Target("memory", "peak pool RSS, big PDF", lambda r: r["memory"]["big_pdf_rss_mb"], "<=",
           400.0, "MB"),
    Target("memory", "peak pool RSS, many pages", lambda r: r["memory"]["many_pages_rss_mb"],
           "<=", 400.0, "MB"),
    Target("recovery", "kill -9 -> indexed", lambda r: r["recovery_s"], "<=", 90.0, "s"),
)


def _eps(probe: dict[str, Any]) -> float:
    return round(probe["events"] / probe["seconds"], 1) if probe["seconds"] else 0.0


def build(ref: ReferenceResult, pipe: PipelineResult, heavy: HeavyResult,
          endpoints: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    baseline_fps = ref.baseline["files"] / ref.baseline["seconds"]
    outside = pipe.cpu_s - ref.limit.extract_cpu_s
    report: dict[str, Any] = {
        "throughput": {"pipeline_fps": round(pipe.fps, 2), "limit_fps": round(ref.limit.fps, 2),
                       "baseline_fps": round(baseline_fps, 2), "files": pipe.files},
        "lag": {"rate_fps": pipe.lag_rate_fps, "p50_s": round(percentile(pipe.lags_s, 50), 3),
                "p95_s": round(percentile(pipe.lags_s, 95), 3),
                "p99_s": round(percentile(pipe.lags_s, 99), 3),
                "max_s": round(max(pipe.lags_s), 3), "files": len(pipe.lags_s)},
        "bridge": {"bridge_eps": _eps(ref.bridge["celery"]), "raw_eps": _eps(ref.bridge["raw"]),
                   "noop_eps": _eps(ref.bridge["noop"]),
                   "no_sent_event_eps": _eps(ref.bridge["celery-no-sent-event"]),
                   "threaded_prototype_eps": _eps(ref.bridge["threaded"]),
                   "threaded_no_sent_event_eps": _eps(ref.bridge["threaded-no-sent-event"]),
                   "cpu_ms_per_event": {m: round(1000 * p["cpu_s"] / max(1, p["events"]), 3)
                                        for m, p in ref.bridge.items()}},
        "overhead_cpu_ms_per_file": round(1000 * outside / max(1, pipe.files), 2),
        "overhead_detail": {
            "pipeline_cpu_s": round(pipe.cpu_s, 3),
            "by_process_cpu_s": {k: round(v, 3) for k, v in pipe.cpu_by_process.items()},
            "extraction_cpu_s": round(ref.limit.extract_cpu_s, 3),
            "baseline_cpu_ms_per_file": round(
                1000 * ref.baseline["cpu_s"] / max(1, ref.baseline["files"]), 2),
            "extraction_cpu_ms_per_file": round(
                1000 * ref.limit.extract_cpu_s / max(1, ref.limit.files), 2)},
        "memory": {"big_pdf_rss_mb": round(heavy.rss_mb["big_pdf"], 1),
                   "many_pages_rss_mb": round(heavy.rss_mb["many_pages"], 1),
                   "peak_was_reset": heavy.peak_was_reset},
        "recovery_s": round(heavy.recovery_s, 2),
        "recovery_detail": {"picked_up_after_s": round(heavy.recovery_picked_up_s, 2),
                            "visibility_timeout_s": heavy.visibility_timeout_s},
        "endpoints": endpoints,
        "params": params,
    }
    report["targets"] = [t.check(report) for t in TARGETS]
    return report


def render(report: dict[str, Any]) -> str:
    t, lag, b, m = report["throughput"], report["lag"], report["bridge"], report["memory"]
    measured = {
        "throughput": f"pipeline {t['pipeline_fps']:.1f} files/s; limit {t['limit_fps']:.1f}; "
                      f"baseline {t['baseline_fps']:.1f}",
        "lag": f"p50 {lag['p50_s']:.2f} s, p95 {lag['p95_s']:.2f} s, p99 {lag['p99_s']:.2f} s "
               f"at {lag['rate_fps']:g} files/s",
        "bridge": f"bridge {b['bridge_eps']:.0f} ev/s (no-op dispatch {b['noop_eps']:.0f}, "
                  f"no task-sent event {b['no_sent_event_eps']:.0f}; threaded prototype "
                  f"{b['threaded_prototype_eps']:.0f}, without task-sent "
                  f"{b['threaded_no_sent_event_eps']:.0f}); raw loop {b['raw_eps']:.0f}",
        "overhead": f"{report['overhead_cpu_ms_per_file']:.1f} ms CPU/file outside extraction",
        "memory": f"big PDF {m['big_pdf_rss_mb']:.0f} MB; many pages "
                  f"{m['many_pages_rss_mb']:.0f} MB",
        "recovery": f"{report['recovery_s']:.1f} s from kill -9 to indexed",
    }
    rows = [("row", "measured", "target", "verdict", "endpoint")]
    for check in report["targets"]:
        verdict = ("met" if check["met"] else "MISSED") + f" ({check['margin_pct']:+.0f} %)"
        rows.append((check["row"], f"{check['what']}: {check['value']:g} {check['unit']}",
                     f"{check['op']} {check['target']:g} {check['unit']}", verdict,
                     report["endpoints"][check["row"]]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines += [f"{row:>10}: {text}" for row, text in measured.items()]
    return "\n".join(lines)
