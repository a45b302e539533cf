"""`farmhand delete ID…` or `farmhand delete --status S [--older-than 7d]`: delete finished jobs
(completed, failed, canceled) with their tasks and logs, one jobs.delete each."""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from farmhand.client import RpcError
from protocol.times import parse_iso_utc

from .base import EXIT_FAILED, EXIT_OK, Command, Context, UsageError, positive_id

FINISHED = ("completed", "failed", "canceled")
_AGE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw]?)")
_UNIT_S = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
PAGE = 1000


def age_s(text: str) -> float:
    """`7d`, `12h`, `30m`, `90s`, `2w` or a bare number of days, in seconds."""
    match = _AGE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"bad age {text!r}: expected e.g. 7d, 12h, 30m")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", type=positive_id, metavar="ID", help="jobs to delete")
    parser.add_argument(
        "--status", choices=FINISHED, action="append", help="all finished jobs of this status"
    )
    parser.add_argument(
        "--older-than",
        type=age_s,
        metavar="AGE",
        help="with --status: only jobs that ended longer ago (7d, 12h, 30m)",
    )


def _chosen(ctx: Context, statuses: list[str], older_than_s: float | None) -> list[int]:
    cutoff = time.time() - older_than_s if older_than_s is not None else None
    chosen: list[int] = []
    for status in statuses:
        offset = 0
        while True:
            params = {"status": status, "limit": PAGE, "offset": offset}
            page: dict[str, Any] = ctx.client.request("jobs.list", params)
            for job in page["jobs"]:
                if cutoff is None or parse_iso_utc(job["updated"]) < cutoff:
                    chosen.append(int(job["id"]))
            offset += len(page["jobs"])
            if not page["jobs"] or offset >= page["total"]:
                break
    return chosen


def run(ctx: Context, args: argparse.Namespace) -> int:
    if args.job_ids and args.status:
        raise UsageError("delete: name job ids or --status, not both")
    if args.older_than is not None and not args.status:
        raise UsageError("delete: --older-than goes with --status")
    if not args.job_ids and not args.status:
        raise UsageError("delete: name job ids, or --status completed|failed|canceled")
    job_ids = args.job_ids or _chosen(ctx, args.status, args.older_than)
    deleted: list[int] = []
    refused: list[dict[str, Any]] = []
    for job_id in job_ids:
        try:
            ctx.client.request("jobs.delete", {"job_id": job_id})
        except RpcError as exc:
            refused.append({"job_id": job_id, "code": exc.code, "error": exc.message})
            continue
        deleted.append(job_id)
    lines = [f"deleted {len(deleted)} of {len(job_ids)} jobs"]
    lines += [f"job {r['job_id']}: {r['error']}" for r in refused]
    ctx.emit({"deleted": deleted, "refused": refused}, "\n".join(lines))
    return EXIT_FAILED if refused else EXIT_OK


COMMAND = Command(
    "delete",
    "delete finished jobs with their tasks and logs",
    add_arguments,
    run,
    examples=(
        "farmhand delete 7 8 9",
        "farmhand delete --status completed --older-than 7d",
    ),
)
