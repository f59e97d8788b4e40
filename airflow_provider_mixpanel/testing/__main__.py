"""``python -m airflow_provider_mixpanel.testing``: run the Mixpanel-compatible test server."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from airflow_provider_mixpanel.testing.server import MixpanelTestServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mixpanel.testing",
        description="A local Mixpanel-compatible server (export + engage) on 127.0.0.1, for tests and demos.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 picks a free one)")
    parser.add_argument("--username", default="test-user", help="service-account username it accepts")
    parser.add_argument("--secret", default="test-secret", help="service-account secret it accepts")
    parser.add_argument("--project-id", type=int, default=12345, help="the project it serves")
    parser.add_argument("--events-per-day", type=int, default=100, help="synthetic events per UTC day")
    parser.add_argument("--profiles", type=int, default=250, help="synthetic profiles")
    parser.add_argument("--page-size", type=int, default=1000, help="engage page size")
    parser.add_argument("--ascii-escape", action="store_true", help="write non-ASCII as \\uXXXX escapes")
    parser.add_argument("--no-gzip", action="store_true", help="never gzip export bodies")
    parser.add_argument("--export-file", help="serve this JSONL file for every export request")
    parser.add_argument("--engage-file", action="append", default=[], help="an engage page (repeat, in order)")
    parser.add_argument("--bytes-per-second", type=float, help="throttle each export response to this rate")
    parser.add_argument("--cache-bodies", action="store_true", help="replay gzip export bodies from memory")
    args = parser.parse_args(argv)

    server = MixpanelTestServer(
        port=args.port,
        username=args.username,
        secret=args.secret,
        project_id=args.project_id,
        events_per_day=args.events_per_day,
        profiles=args.profiles,
        page_size=args.page_size,
        ascii_escape=args.ascii_escape,
        gzip=not args.no_gzip,
        export_file=args.export_file,
        engage_files=args.engage_file,
        bytes_per_second=args.bytes_per_second,
        cache_bodies=args.cache_bodies,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    server.start()
    print(f"Mixpanel test server on {server.url}", flush=True)
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
