"""`python -m fabric.agent`: collect (or simulate) a report and post it to the portal.

Exit codes: 0 the report was accepted (or printed), 1 posting failed, 2 a usage error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from . import AGENT_VERSION
from .collect import collect_report
from .simulate import DescriptionError, load_description, simulate_report

REPORT_PATH = "/api/v1/agent/report/"
TOKEN_ENV = "NODE_AGENT_TOKEN"  # noqa: S105  (the variable's name, not a token)
EXIT_OK, EXIT_POST_FAILED, EXIT_USAGE = 0, 1, 2


class PostError(Exception):
    pass


def post_report(
    report: dict[str, Any], *, portal: str, token: str, timeout: float = 30
) -> dict[str, Any]:
    """POST the report; returns the portal's answer or raises PostError with a message that
    never contains the token."""
    url = portal.rstrip("/") + REPORT_PATH
    if not url.startswith(("http://", "https://")):
        raise PostError(f"the portal URL must start with http:// or https://, not {portal!r}")
    request = urllib.request.Request(  # noqa: S310  (scheme checked above)
        url,
        data=json.dumps(report).encode(),
        method="POST",
        headers={
            "Authorization": f"Node {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"storefront-node-agent/{AGENT_VERSION}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:500]
        raise PostError(f"{url} answered HTTP {exc.code}: {body}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PostError(f"cannot reach {url}: {reason}") from exc
    except ValueError as exc:
        raise PostError(f"{url} answered something that is not JSON: {exc}") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fabric.agent",
        description="Report this server's GPUs and network interfaces to the storefront portal.",
    )
    parser.add_argument("--portal", help="the portal's base URL, e.g. https://portal.example")
    parser.add_argument("--token", help=f"the node's agent token (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--print", action="store_true", dest="print_only", help="print the report, do not post"
    )
    parser.add_argument("--sysfs-root", default="/", help="where /sys is found (default: /)")
    parser.add_argument(
        "--simulate", metavar="FILE", help="build the report from a JSON hardware description"
    )
    parser.add_argument("--timeout", type=float, default=30, help="HTTP timeout in seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad flags and 0 on --help
        return int(exc.code or 0)
    token = args.token or os.environ.get(TOKEN_ENV, "")
    if not args.print_only and not args.portal:
        print("error: --portal is required unless --print is given", file=sys.stderr)
        return EXIT_USAGE
    if not args.print_only and not token:
        print(f"error: give --token or set {TOKEN_ENV}", file=sys.stderr)
        return EXIT_USAGE

    try:
        if args.simulate:
            report = simulate_report(load_description(args.simulate))
        else:
            report = collect_report(args.sysfs_root)
    except DescriptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if not report["nvml"]["available"]:
        print(f"warning: NVML unavailable ({report['nvml']['error']})", file=sys.stderr)
    if args.print_only:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    try:
        answer = post_report(report, portal=args.portal, token=token, timeout=args.timeout)
    except PostError as exc:
        print(f"post failed: {exc}", file=sys.stderr)
        return EXIT_POST_FAILED
    drift = answer.get("drift", [])
    print(f"report accepted: {len(report['gpus'])} GPU(s), {len(report['nics'])} NIC(s)")
    for item in drift:
        print(f"drift: {item.get('kind')} {item.get('subject')}")
    return EXIT_OK
