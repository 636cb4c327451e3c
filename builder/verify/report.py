"""A finished verify run, as text for people and as JSON for scripts."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from builder.verify.judge import MONITOR_SESSIONS

if TYPE_CHECKING:
    from builder.verify.judge import Measurements, Verdict
    from builder.verify.options import VerifyOptions


@dataclasses.dataclass(frozen=True)
class Report:
    """A finished run: the options, the measurements and the verdict."""

    options: VerifyOptions
    concurrency: int
    measured: Measurements
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        load, plan = self.measured.load, self.measured.plan.plan
        return {
            "image": self.options.image,
            "database_image": self.options.database_image,
            "max_connections": self.options.max_connections,
            "cpus": self.options.cpus,
            "plan": self.measured.plan.as_dict(),
            "load": {
                "path": self.options.path,
                "concurrency": self.concurrency,
                "duration": self.options.duration,
                "seconds": round(load.seconds, 3),
            },
            "requests": load.total,
            "ok": load.ok,
            "failed": load.failed,
            "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
            "no_answer": load.exceptions,
            "requests_per_second": round(load.ok / load.seconds, 1) if load.seconds else 0.0,
            "latency_p50": round(load.percentile(0.5), 4),
            "latency_p99": round(load.percentile(0.99), 4),
            "max_used_connections": self.measured.max_used_connections,
            "monitor_sessions": MONITOR_SESSIONS,
            "app_peak_connections": self.measured.app_peak,
            "budget": plan.budget,
            "errors_1040": self.measured.refused_1040,
            "app_connections_after_load": self.measured.app_connections_after,
            "app_running": self.measured.app_running,
            "passed": self.verdict.passed,
            "failures": list(self.verdict.failures),
            "promises": [
                {
                    "name": promise.name,
                    "held": promise.held,
                    "figures": promise.figures,
                    "failures": list(promise.failures),
                }
                for promise in self.verdict.promises
            ],
            "timeline": self.measured.timeline.as_dict(),
        }

    def as_text(self) -> str:
        """The human-readable report."""
        data = self.as_dict()
        plan = self.measured.plan.plan
        lines = [
            f"kitbuild verify {self.options.image} against {self.options.database_image}",
            f"  server    max_connections {self.options.max_connections}; "
            f"app --cpus {self.options.cpus:g}",
            f"  plan      {plan.workers} workers x {plan.threads} threads: "
            f"at most {plan.peak_connections_all} connections; budget {plan.budget} "
            f"({plan.max_connections} - {plan.reserved} reserved)",
            f"  load      GET {self.options.path}, {self.concurrency} clients for "
            f"{self.options.duration:g} s",
            f"  requests  {data['requests']} (ok {data['ok']}, failed {data['failed']}), "
            f"{data['requests_per_second']} req/s, p50 {data['latency_p50']:.3f} s, "
            f"p99 {data['latency_p99']:.3f} s",
            f"  server    Max_used_connections {data['max_used_connections']} "
            f"(app {data['app_peak_connections']} + {MONITOR_SESSIONS} verify session), "
            f"refused with 1040: {data['errors_1040']}",
        ]
        if self.verdict.passed:
            lines.append(
                "  verdict   PASS: the app stayed within its budget and answered every request"
            )
        else:
            lines.append("  verdict   FAIL: " + "; ".join(self.verdict.failures))
        return "\n".join(lines)
