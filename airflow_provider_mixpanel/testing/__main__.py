"""``python -m airflow_provider_mixpanel.testing``: run the Mixpanel-compatible test server."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime

from airflow_provider_mixpanel.testing.clock import SimClock
from airflow_provider_mixpanel.testing.config import DEFAULT_MAX_PAGE_SIZE
from airflow_provider_mixpanel.testing.lateness import LateArrival
from airflow_provider_mixpanel.testing.quota import RETRY_AFTER_CHOICES, Quotas
from airflow_provider_mixpanel.testing.server import MixpanelTestServer


def build_server(argv: list[str] | None = None) -> MixpanelTestServer:
    """The (not yet started) server the command line describes."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mixpanel.testing",
        description="A local Mixpanel-compatible server (export, engage, cohorts, funnels, annotations, Lexicon) "
        "on 127.0.0.1, for tests and demos.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 picks a free one)")
    parser.add_argument("--username", default="test-user", help="service-account username it accepts")
    parser.add_argument("--secret", default="test-secret", help="service-account secret it accepts")
    parser.add_argument("--project-id", type=int, default=12345, help="the project it serves")
    parser.add_argument("--events-per-day", type=int, default=100, help="synthetic events per UTC day")
    parser.add_argument("--profiles", type=int, default=250, help="synthetic profiles")
    parser.add_argument("--page-size", type=int, default=1000, help="engage page size when a request sets none")
    parser.add_argument(
        "--max-page-size", type=int, default=DEFAULT_MAX_PAGE_SIZE, help="the largest engage page_size honoured"
    )
    parser.add_argument("--no-echo-page-size", action="store_true", help="do not report page_size on engage page 0")
    parser.add_argument("--profile-properties", type=int, default=0, help="extra properties on every profile")
    metadata = parser.add_argument_group("cohorts, funnels, annotations and the Lexicon")
    metadata.add_argument("--cohorts", type=int, default=4, help="saved cohorts (ids from 1000)")
    metadata.add_argument("--cohort-size", type=int, default=100, help="members of each cohort (profiles)")
    metadata.add_argument("--funnels", type=int, default=3, help="saved funnels (ids from 7500)")
    metadata.add_argument("--annotations-per-day", type=int, default=1, help="annotations on three days in four")
    metadata.add_argument("--lexicon-events", type=int, default=0, help="extra Lexicon event schemas")
    parser.add_argument("--ascii-escape", action="store_true", help="write non-ASCII as \\uXXXX escapes")
    parser.add_argument("--no-gzip", action="store_true", help="never gzip export bodies")
    parser.add_argument("--export-file", help="serve this JSONL file for every export request")
    parser.add_argument("--engage-file", action="append", default=[], help="an engage page (repeat, in order)")
    parser.add_argument("--bytes-per-second", type=float, help="throttle each response to this rate")
    parser.add_argument("--cache-bodies", action="store_true", help="replay gzip export bodies from memory")
    quota = parser.add_argument_group("Mixpanel's rate limits (off unless --quotas)")
    quota.add_argument("--quotas", action="store_true", help="enforce the limits below and answer 429")
    quota.add_argument("--export-per-hour", type=int, default=60, help="export queries per rolling hour")
    quota.add_argument("--export-per-second", type=int, default=3, help="export queries per second")
    quota.add_argument("--export-concurrent", type=int, default=100, help="export queries at once")
    quota.add_argument(
        "--query-per-hour", type=int, default=60, help="query API (engage, cohorts, funnels) queries per rolling hour"
    )
    quota.add_argument("--query-concurrent", type=int, default=5, help="query API queries at once")
    quota.add_argument("--lexicon-per-minute", type=int, default=5, help="Lexicon schema requests per minute")
    quota.add_argument(
        "--retry-after", choices=RETRY_AFTER_CHOICES, default="hourly-only", help="which 429s carry Retry-After"
    )
    clock = parser.add_argument_group("simulated time and late events")
    clock.add_argument("--start", type=datetime.fromisoformat, help="simulated start time (UTC), e.g. 2024-03-02T00:30")
    clock.add_argument("--speed-up", type=float, default=1.0, help="simulated seconds per real second, e.g. 3600")
    clock.add_argument(
        "--late-arrival", action="store_true", help="process events late (90%% within a minute, up to 5 days)"
    )
    args = parser.parse_args(argv)

    quotas = None
    if args.quotas:
        quotas = Quotas(
            export_per_hour=args.export_per_hour,
            export_per_second=args.export_per_second,
            export_concurrent=args.export_concurrent,
            query_per_hour=args.query_per_hour,
            query_concurrent=args.query_concurrent,
            lexicon_per_minute=args.lexicon_per_minute,
            retry_after=args.retry_after,
        )
    return MixpanelTestServer(
        port=args.port,
        username=args.username,
        secret=args.secret,
        project_id=args.project_id,
        events_per_day=args.events_per_day,
        profiles=args.profiles,
        page_size=args.page_size,
        max_page_size=args.max_page_size,
        echo_page_size=not args.no_echo_page_size,
        profile_properties=args.profile_properties,
        cohorts=args.cohorts,
        cohort_size=args.cohort_size,
        funnels=args.funnels,
        annotations_per_day=args.annotations_per_day,
        lexicon_events=args.lexicon_events,
        ascii_escape=args.ascii_escape,
        gzip=not args.no_gzip,
        export_file=args.export_file,
        engage_files=args.engage_file,
        bytes_per_second=args.bytes_per_second,
        cache_bodies=args.cache_bodies,
        quotas=quotas,
        late_arrival=LateArrival() if args.late_arrival else None,
        clock=SimClock(args.start, speed=args.speed_up),
    )


def main(argv: list[str] | None = None) -> int:
    server = build_server(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    server.start()
    print(f"Mixpanel test server on {server.url} (clock {server.clock!r})", flush=True)
    print(f"AIRFLOW_CONN_MIXPANEL_DEFAULT='{server.connection_json()}'", flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
