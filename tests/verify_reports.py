"""Verify reports made without Docker, for the page and JUnit tests.

Each has a plan, a load with its timeline, and the verdict the judge gives them.
"""

from __future__ import annotations

from builder.verify.judge import Measurements, judge
from builder.verify.load import LoadResult, Sample
from builder.verify.options import VerifyOptions
from builder.verify.report import Report
from builder.verify.sampler import COUNTERS, Sampling, Tick
from builder.verify.timeline import build_timeline
from kitbuild_runtime import capacity
from kitbuild_runtime.events import PlanRecord

#: The plan of mysite at one CPU against max_connections 40: 3 x 12 = 36 of a budget of 37.
PLAN = PlanRecord(
    capacity.make_plan(
        capacity.Settings(cpus=1, max_connections=40), capacity.Limits(cgroup_version="none")
    ),
    server_max_connections=40,
)


def sampled_report(
    *, seconds: int = 6, overload_from: int | None = None, options: VerifyOptions | None = None
) -> Report:
    """A run of ``seconds`` seconds, 20 requests a second, sampled every second.

    From second ``overload_from`` on (if given) the app holds 10 connections over its
    budget, a quarter of the requests fail with 500 and the server refuses 5 a second.
    """
    samples, ticks, refused = [], [], 0
    for second in range(1, seconds + 1):
        broken = overload_from is not None and second >= overload_from
        for n in range(20):
            started = 100.0 + second - 1 + n / 20
            status = 500 if broken and n % 4 == 0 else 200
            samples.append(Sample(started, started + 0.04 + n / 1000, status=status))
        refused += 5 if broken else 0
        open_now = PLAN.plan.budget - 1 + (10 if broken else 0)
        high = max(open_now, PLAN.plan.budget - 1 if not broken else open_now)
        values = (open_now + 1, high + 1, refused)
        ticks.append(Tick(second, 100.0 + second, dict(zip(COUNTERS, values, strict=True))))
    sampling = Sampling(100.0, 100.0 + seconds, 1.0, tuple(ticks))
    load = LoadResult(tuple(samples), concurrency=180, seconds=float(seconds))
    peak = max(t.counters["Max_used_connections"] for t in ticks)
    measured = Measurements(
        plan=PLAN,
        load=load,
        max_used_connections=peak,
        refused_1040=refused,
        app_connections_after=PLAN.plan.budget - 1,
        app_running=True,
        timeline=build_timeline(sampling, samples, refused_before=0, own_sessions=1),
    )
    options = options or VerifyOptions(image="mysite:latest", path="/db/sleep/?seconds=0.05")
    return Report(options, 180, measured, judge(measured))
