"""Prove an image keeps its connection budget under overload, against a real server.

Start a MySQL-compatible server at --max-connections, migrate, start IMAGE with a CPU
limit, overload it, and check that it never opened more connections than its budget and
answered every request. Exit 0 when it did, 3 when it did not, 1 when the run could not be
made. Everything started is removed afterwards. --report writes the run as an HTML page with
its timeline, --junit the verdict as JUnit XML.
"""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from builder.commands._shared import interruptible
from builder.engine import DockerGateway
from builder.image.service_images import MYSQL_IMAGE
from builder.verify.junit import render_junit
from builder.verify.load import Load
from builder.verify.options import parse_options
from builder.verify.output import check_destinations, write_files
from builder.verify.page import render_html
from builder.verify.run import EXIT_PROMISE_FAILED, OVERLOAD_FACTOR, check_images, run_verify
from builder.verify.server import ServerSession
from builder.verify.stack import RUN_LABEL, VerifyStack
from kitbuild_runtime.environment import HEALTH_PATH

if TYPE_CHECKING:
    from builder.commands._shared import Io
    from builder.verify.load import LoadResult
    from builder.verify.server import Credentials


def configure(parser: argparse.ArgumentParser) -> None:
    """The run's server, limits, page, load and output."""
    parser.add_argument("image", metavar="IMAGE", help="an image built by kitbuild")
    parser.add_argument(
        "--database-image",
        metavar="IMAGE",
        default=MYSQL_IMAGE,
        help="the server image, e.g. mysql:8.4 (default: %(default)s, made when missing)",
    )
    parser.add_argument(
        "--max-connections", metavar="N", default="40", help="the server's limit (default: 40)"
    )
    parser.add_argument("--cpus", metavar="N", default="1", help="the app's CPU limit (default: 1)")
    parser.add_argument(
        "--path",
        default=HEALTH_PATH,
        help=f"a page that uses the database (default: {HEALTH_PATH}, which runs SELECT 1)",
    )
    parser.add_argument(
        "--duration", metavar="SECONDS", default="15", help="load duration (default: 15)"
    )
    parser.add_argument(
        "--concurrency",
        metavar="N",
        help=f"clients at once (default: {OVERLOAD_FACTOR} x the plan's threads)",
    )
    parser.add_argument(
        "--env",
        "-e",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the app (repeatable), e.g. a setting your project needs",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--report",
        metavar="FILE.html",
        type=Path,
        help="also write the run as one self-contained HTML page, with its timeline charts",
    )
    parser.add_argument(
        "--junit",
        metavar="FILE.xml",
        type=Path,
        help="also write the verdict as JUnit XML, one test case per promise",
    )


def _monitor(port: int, credentials: Credentials) -> ServerSession:
    return ServerSession("127.0.0.1", port, user="root", password=credentials.root_password)


def _load(port: int, path: str, concurrency: int, seconds: float) -> LoadResult:
    return Load(port, path, concurrency=concurrency, duration=seconds).run()


def run(args: argparse.Namespace, io: Io) -> int:
    """Check the options, wire the real stack, monitor and load, and report."""
    options = parse_options(
        args.image,
        database_image=args.database_image,
        max_connections=args.max_connections,
        cpus=args.cpus,
        path=args.path,
        duration=args.duration,
        concurrency=args.concurrency,
        env=args.env,
    )
    check_destinations({"--report": args.report, "--junit": args.junit})
    gateway = DockerGateway.connect()
    try:
        with interruptible():
            check_images(options, gateway, io.progress)
            run_id = secrets.token_hex(6)
            stack = VerifyStack(gateway, run_id)
            io.progress(f"kitbuild: this run's containers carry the label {RUN_LABEL}={run_id}")
            report = run_verify(options, stack=stack, monitor=_monitor, load=_load, say=io.progress)
    finally:
        gateway.close()
    files = {}
    if args.report is not None:
        files[args.report] = render_html(report)
    if args.junit is not None:
        files[args.junit] = render_junit(report)
    write_files(files)
    for path in files:
        io.progress(f"kitbuild: wrote {path}")
    io.say(json.dumps(report.as_dict(), indent=2) if args.json else report.as_text())
    return 0 if report.verdict.passed else EXIT_PROMISE_FAILED
