"""Claim cost: does taking a job from the queue cost the same with 0, 20,000 and 200,000 waiting?

The issue asks that claiming a job costs the same at 0, 20,000 and 200,000 ready jobs. For each
backlog the bench empties the `jobs` table, bulk-inserts backlog + `--claims` due jobs (spread
over the last hour, so the claims take the oldest), lets the database refresh its statistics as
autovacuum would (`ANALYZE`), then times `--claims` calls of `bridge.jobs.claim` one after the
other, completing each claimed job outside the timed part (as a worker does). It also shows the
query plan of a claim (PostgreSQL: its one statement; SQLite: both probes).

    python bench/jobs.py                                   # PostgreSQL (a fresh bench_<random> db)
    python bench/jobs.py --database-url sqlite             # a fresh SQLite file
    python bench/jobs.py --backlogs 0 20000 200000 --claims 2000

The last line is one JSON object: `claim_p99_ms` per backlog and `claim_p99_ratio` (largest
backlog / smallest; target <= 2). Nothing asserts on time; exit status 2 if it could not run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import BenchError, emit, percentile, prepared_database  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bridge import jobs  # noqa: E402
from bridge.store import db_now, make_engine, write_session  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_BACKLOGS = (0, 20_000, 200_000)
TARGET_RATIO = 2.0
WARM_CLAIMS = 20
KINDS = ["submit", "sync_order", "track", "push"]


def fill(engine: Engine, count: int) -> None:
    """`count` due ready jobs of mixed kinds, run_at spread over the hour before now, in one statement."""
    with write_session(engine) as session:
        session.execute(text("DELETE FROM jobs"))
        now = db_now(session)
        if count == 0:
            return
        values = (
            "('{kinds}'::text[])[1 + n % 4], '{{}}', 'ready', {now} - 3600 + n * 3600.0 / {count}, 0, 8, '', "
            "{now}, {now}"
        )
        if engine.dialect.name == "postgresql":
            select_values = values.format(kinds="{" + ",".join(KINDS) + "}", now=now, count=count)
            session.execute(
                text(
                    "INSERT INTO jobs (kind, payload, status, run_at, attempts, max_attempts, last_error, "
                    f"created_at, updated_at) SELECT {select_values} FROM generate_series(1, {count}) AS n"
                )
            )
        else:
            kind = " ".join(f"WHEN {i} THEN '{k}'" for i, k in enumerate(KINDS))
            session.execute(
                text(
                    f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) "
                    "INSERT INTO jobs (kind, payload, status, run_at, attempts, max_attempts, last_error, "
                    f"created_at, updated_at) SELECT CASE n % 4 {kind} END, '{{}}', 'ready', "
                    f"{now} - 3600 + n * 3600.0 / {count}, 0, 8, '', {now}, {now} FROM s"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE jobs"))
        ready = conn.execute(text("SELECT count(*) FROM jobs WHERE status = 'ready'")).scalar_one()
    if ready != count:
        raise BenchError(f"filling the queue went wrong: {ready} ready jobs instead of {count}")


def plans(engine: Engine) -> list[str]:
    """The database's plan for a claim, as the bridge compiles it: on PostgreSQL its one
    statement (`jobs._claim_stmt`), on SQLite each of its two probes."""
    from sqlalchemy.dialects import postgresql, sqlite

    if engine.dialect.name == "postgresql":
        stmt = jobs._claim_stmt(tuple(KINDS)).params(token="bench", lease_s=60.0)
        sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            rows = conn.execute(text("EXPLAIN " + sql)).all()
        return ["claim, one statement: " + " | ".join(str(r[0]).strip() for r in rows)]
    dialect = sqlite.dialect()
    out: list[str] = []
    now = time.time()
    for name, probe in (("due", jobs._due_jobs()), ("expired lease", jobs._expired_leases())):
        kinds = text("kind IN ('submit', 'sync_order', 'track', 'push')")
        query = probe.params(now=now).where(kinds).limit(1)
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            rows = conn.execute(text("EXPLAIN QUERY PLAN " + sql)).all()
        lines = [str(r[-1]) for r in rows]
        out.append(f"{name}: " + " | ".join(line.strip() for line in lines))
    return out


def measure(engine: Engine, claims: int) -> list[float]:
    times: list[float] = []
    for _ in range(claims):
        started = time.perf_counter()
        job = jobs.claim(engine, KINDS)
        times.append((time.perf_counter() - started) * 1000)
        if job is None:
            raise BenchError("the queue ran dry before the last claim")
        with write_session(engine) as session:
            jobs.complete(session, job)
    return times


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="fba-bench-jobs-"))
    requested = None if args.database_url == "sqlite" else args.database_url
    rows: list[dict[str, Any]] = []
    try:
        with prepared_database(requested, workdir) as db:
            engine = make_engine(db.url)
            try:
                print(
                    f"jobs bench: database={db.kind}; {args.claims} claims per backlog; load average "
                    f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
                    flush=True,
                )
                jobs.claim(engine, KINDS)  # connect and warm the pool
                for backlog in args.backlogs:
                    started = time.monotonic()
                    fill(engine, backlog + args.claims + WARM_CLAIMS)
                    filled = time.monotonic() - started
                    measure(engine, WARM_CLAIMS)  # warm the statement caches; not counted
                    times = measure(engine, args.claims)
                    row = {
                        "backlog": backlog,
                        "p50_ms": round(percentile(times, 50), 2),
                        "p99_ms": round(percentile(times, 99), 2),
                        "max_ms": round(percentile(times, 100), 2),
                        "fill_s": round(filled, 1),
                    }
                    rows.append(row)
                    print(
                        f"  backlog {backlog:>7}: claim p50 {row['p50_ms']:6.2f} ms  "
                        f"p99 {row['p99_ms']:6.2f} ms  max {row['max_ms']:7.2f} ms  (fill {filled:.1f} s)",
                        flush=True,
                    )
                for line in plans(engine):
                    print(f"  plan, {line}")
            finally:
                engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    p99 = [r["p99_ms"] for r in rows]
    smallest = p99[args.backlogs.index(min(args.backlogs))]
    largest = p99[args.backlogs.index(max(args.backlogs))]
    ratio = round(largest / smallest, 2) if smallest > 0 else None
    return {
        "bench": "jobs",
        "database": db.kind,
        "backlogs": list(args.backlogs),
        "claims": args.claims,
        "claim_p50_ms": [r["p50_ms"] for r in rows],
        "claim_p99_ms": p99,
        "claim_p99_ratio": ratio,
        "target_claim_p99_ratio": TARGET_RATIO,
        "load_average": round(os.getloadavg()[0], 2),
        "meets_targets": ratio is not None and ratio <= TARGET_RATIO,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help=f"PostgreSQL server for a throw-away database (default {DEFAULT_DATABASE}); `sqlite` "
        "for a fresh SQLite file, or a sqlite:/// URL",
    )
    parser.add_argument("--backlogs", type=int, nargs="+", default=list(DEFAULT_BACKLOGS))
    parser.add_argument(
        "--claims",
        type=int,
        default=2000,
        help="timed claims per backlog (default 2000: its p99 is the 20th slowest)",
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if any(b < 0 or b > 2_000_000 for b in args.backlogs) or not 10 <= args.claims <= 100_000:
        parser.error("backlogs must be in [0, 2000000] and --claims in [10, 100000]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        line = run(args)
    except BenchError as exc:
        print(f"jobs bench could not run: {exc}", file=sys.stderr)
        return 2
    line["wall_s"] = round(time.monotonic() - started, 1)
    emit(line, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
