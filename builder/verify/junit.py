"""A verify run as JUnit XML: one test case per promise, for CI systems that read it natively.

A broken promise is a ``<failure>`` whose message is the judge's reason, with its numbers;
every case carries the figures it was judged on in ``<system-out>``, so a passing case
says how close it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.etree import ElementTree

if TYPE_CHECKING:
    from builder.verify.report import Report


def render_junit(report: Report) -> str:
    """The JUnit XML document (a ``<testsuites>`` with one suite of one case per promise)."""
    data = report.as_dict()
    promises = report.verdict.promises
    failures = sum(1 for promise in promises if not promise.held)
    seconds = f"{report.measured.load.seconds:.3f}"
    name = f"kitbuild verify {report.options.image}"
    root = ElementTree.Element(
        "testsuites", name=name, tests=str(len(promises)), failures=str(failures), time=seconds
    )
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(promises)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=seconds,
    )
    properties = ElementTree.SubElement(suite, "properties")
    for key in ("image", "database_image", "max_connections", "cpus", "budget"):
        ElementTree.SubElement(properties, "property", name=key, value=str(data[key]))
    plan = report.measured.plan.plan
    ElementTree.SubElement(
        properties,
        "property",
        name="plan",
        value=f"{plan.workers} workers x {plan.threads} threads",
    )
    load = data["load"]
    ElementTree.SubElement(
        properties,
        "property",
        name="load",
        value=f"GET {load['path']}, {load['concurrency']} clients for {load['duration']:g} s",
    )
    for promise in promises:
        case = ElementTree.SubElement(
            suite, "testcase", classname=name, name=promise.name, time=seconds
        )
        if not promise.held:
            failure = ElementTree.SubElement(
                case, "failure", message="; ".join(promise.failures), type="BrokenPromise"
            )
            failure.text = "\n".join(promise.failures)
        ElementTree.SubElement(case, "system-out").text = promise.figures
    ElementTree.SubElement(suite, "system-out").text = report.as_text()
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
