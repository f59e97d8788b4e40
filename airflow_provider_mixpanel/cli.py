"""``mixpanel-stream``: Mixpanel records of any kind (events, profiles, cohorts...) as JSONL on
stdout, or as JSONL or Parquet in a file. One subcommand per stream kind, its options generated
from the kind's arguments (:mod:`airflow_provider_mixpanel.kinds`).

Each line is the hook's record serialized exactly as the operators write it, so a file from the
command and an object from an operator agree byte for byte (Parquet: the operators' columns).
Progress and errors go to stderr;
errors are one line saying what to do (``--debug`` for a traceback). The connection is found the
way ``airflow connections get`` finds it, in every store (see :func:`_resolve_connection`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import IO, Any, TextIO, cast

from airflow_provider_mixpanel import __version__
from airflow_provider_mixpanel.cli_retry import RetryPlan, add_retry_arguments, retry_plan
from airflow_provider_mixpanel.env_connection import connection_from_environment
from airflow_provider_mixpanel.kinds import KINDS, StreamKind
from airflow_provider_mixpanel.output_file import WRITE_BUFFER_BYTES, OutputFile
from airflow_provider_mixpanel.schemas import OUTPUT_FORMATS
from airflow_provider_mixpanel.terminal_progress import Progress, StderrThatMayClose, is_terminal

PROG = "mixpanel-stream"
# Output is flushed at least this often (seconds), so `| jq` sees a slow stream as it comes.
FLUSH_INTERVAL = 1.0
EXIT_ERROR = 1
EXIT_USAGE = 2
# A process ended by signal N exits with 128 + N, as shells report it (SIGTERM: 143).
EXIT_SIGNAL_BASE = 128
# Ctrl-C (SIGINT), reported the same way.
EXIT_INTERRUPTED = EXIT_SIGNAL_BASE + signal.SIGINT
# `timeout`, `kill` and a closed terminal: each ends the export through its cleanup, not mid-write.
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stream Mixpanel records (events, profiles, cohorts...) as JSONL on stdout, one record per "
        "line, through an Airflow 'mixpanel' connection; or into a JSONL or Parquet file with --output.",
        epilog="Examples:\n"
        f"  {PROG} events --from 2024-03-01 --to 2024-03-01 | head -n 3\n"
        f"  {PROG} events --from 2024-03-01 --to 2024-03-07 --event Purchase --raw > purchases.jsonl\n"
        f"  {PROG} profiles --where 'properties[\"plan\"] == \"pro\"' --output-property '$email' | jq .distinct_id\n"
        f"  {PROG} events --from 2024-03-01 --to 2024-03-01 --format parquet --output events.parquet\n"
        f"  {PROG} identity --from 2024-03-01 --to 2024-03-31 > identity_mappings.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--conn-id",
        default="mixpanel_default",
        help="Airflow connection id of type mixpanel (default: mixpanel_default, e.g. AIRFLOW_CONN_MIXPANEL_DEFAULT)",
    )
    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument(
        "--raw", action="store_true", help="write records exactly as Mixpanel sent them instead of normalized"
    )
    common.add_argument(
        "--format",
        dest="output_format",
        choices=OUTPUT_FORMATS,
        default="jsonl",
        help="jsonl (default) or parquet (zstd; needs the parquet extra and --output)",
    )
    common.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE instead of stdout; a regular file (also behind a symlink) is replaced only once the "
        "export is complete (a failed export leaves it as it was), a device or FIFO is written in place",
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs on errors")
    add_retry_arguments(common)
    common.add_argument(
        "--skip-malformed", action="store_true", help="skip records that are not JSON objects instead of failing"
    )
    names = [*KINDS, "identity"]
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(names) + "}")
    for kind in KINDS.values():
        _add_kind(commands, kind, [common, selection])
    # Derived from the events' lines, not a kind of its own: the same records raw or normalized.
    identity = commands.add_parser(
        "identity",
        parents=[common],
        help="identity mappings (Simplified ID Merge) derived from the events of a date range",
        description="Stream the identity mappings the events of an inclusive range of days create: one record "
        "per device seen with a $user_id, {distinct_id: '$device:<id>', resolved_distinct_id: <user id>, "
        "event_time, insert_id} (one export request, as for events).",
    )
    identity.add_argument("--from", dest="from_date", required=True, metavar="YYYY-MM-DD", help="first day")
    identity.add_argument("--to", dest="to_date", required=True, metavar="YYYY-MM-DD", help="last day (inclusive)")
    return parser


def _add_kind(commands: Any, kind: StreamKind, parents: list[argparse.ArgumentParser]) -> None:
    """The subcommand of one kind: its days when it is dated, then its query's arguments."""
    dated = "an inclusive range of days" if kind.dated else "a snapshot of the project now"
    command = commands.add_parser(
        kind.name, parents=parents, help=kind.summary, description=f"Stream {kind.summary}: {dated}."
    )
    if kind.dated:
        command.add_argument("--from", dest="from_date", required=True, metavar="YYYY-MM-DD", help="first day")
        command.add_argument("--to", dest="to_date", required=True, metavar="YYYY-MM-DD", help="last day (inclusive)")
    for name, spec in kind.query_type.arguments().items():
        if spec.flag is None:
            continue
        if spec.metavar is None:  # a switch
            # --no-FLAG too: a switch may be tri-state (include_all_users=false is not its default).
            command.add_argument(spec.flag, dest=name, action=argparse.BooleanOptionalAction, help=spec.help)
        elif spec.repeat:
            help_text = f"{spec.help} (repeat for more)"
            command.add_argument(spec.flag, dest=name, action="append", metavar=spec.metavar, help=help_text)
        else:
            command.add_argument(spec.flag, dest=name, type=spec.cli_type, metavar=spec.metavar, help=spec.help)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _signals_stop_the_export(), _stderr_that_may_close():
        try:
            return _run(args)
        except KeyboardInterrupt:  # before the export (`import airflow`, a FIFO waiting for a reader)
            return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    # A connection in AIRFLOW_CONN_<ID> that Airflow itself would take from there is read without
    # importing Airflow (over a second); any other store is Airflow's to search.
    connection = connection_from_environment(args.conn_id)
    if connection is None:
        try:
            _import_airflow(args.debug)
        except Exception as err:  # e.g. the configured metadata database's driver is not installed
            return _fail(err, args.debug, EXIT_ERROR, f"Airflow did not start: {type(err).__name__}: {err}")
    progress = Progress.on(sys.stderr, f"{PROG}: ", quiet=args.quiet)
    _configure_logging(args.debug, progress)
    from airflow_provider_mixpanel.errors import MixpanelConfigError, MixpanelError

    # Records get their own handle on stdout (or a file); anything else printed to stdout (Airflow
    # 2 logs to it) goes to stderr, so stdout carries nothing but JSONL.
    sys.stdout.flush()
    try:
        _check_output(args)
        retry = retry_plan(args.max_retries, args.max_retry_after, interactive=is_terminal(sys.stderr))
        target = OutputFile(args.output) if _writes_file(args) else None
    except MixpanelConfigError as err:
        return _fail(err, args.debug, EXIT_USAGE)
    except OSError as err:
        return _fail(err, args.debug, EXIT_USAGE, f"--output {args.output}: {err.strerror or err}")
    sink = target.file if target is not None else os.fdopen(os.dup(1), "wb", buffering=WRITE_BUFFER_BYTES)
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    records: Any = None
    client: Any = None
    done = False
    try:
        # Inside the try: the Parquet encoder imports pyarrow, long enough for a signal to arrive.
        out = _writer(args, sink)
        client, records = _open_stream(args, connection, retry)
        count = _write(records, out, progress)
        if args.output_format == "parquet":
            out.finish()  # the footer: a Parquet file is readable only once it is complete
        out.flush()
        if target is not None:
            target.commit()
        done = True
    except BrokenPipeError as err:
        # Only the output's pipe can break here (stderr drops what it cannot write). A regular file
        # is never left uncommitted with exit status 0.
        if target is not None and target.replaces:
            return _fail(err, args.debug, EXIT_ERROR, f"{type(err).__name__}: {err}", progress=progress)
        # The reader went away (`| head`): stop quietly, like other Unix tools.
        _close_quietly(records)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sink.fileno())
        return 0
    except KeyboardInterrupt:
        progress.clear()
        _close_quietly(records)
        return EXIT_INTERRUPTED
    except MixpanelConfigError as err:
        return _fail(err, args.debug, EXIT_USAGE, progress=progress)
    except MixpanelError as err:
        return _fail(err, args.debug, EXIT_ERROR, retry.explain(err, client), progress=progress)
    except Exception as err:
        if type(err).__name__ == "AirflowNotFoundException":
            env_var = f"AIRFLOW_CONN_{args.conn_id.upper()}"
            message = (
                f"Connection {args.conn_id!r} is not defined in the secrets backend, {env_var} or the "
                f"metadata database this shell sees (`airflow connections get {args.conn_id}` looks in the "
                f"same places): set {env_var} (JSON or URI), add it to your secrets backend or in the "
                "Airflow UI, or pass --conn-id."
            )
            return _fail(err, args.debug, EXIT_ERROR, message)
        return _fail(err, args.debug, EXIT_ERROR, f"{type(err).__name__}: {err}", progress=progress)
    finally:
        if target is not None and not done:
            target.discard()  # a temporary file is removed; a file, device or FIFO that was there is left as it was
        with contextlib.suppress(BrokenPipeError):
            sink.close()
        with contextlib.suppress(BrokenPipeError):  # stdout is stderr's pipe here; its reader may be gone
            sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    progress.clear()
    if not args.quiet:
        where = f" written to {args.output}" if target is not None else ""
        print(f"{PROG}: {count:,} records{where}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _signals_stop_the_export() -> Iterator[None]:
    """While the command runs, SIGTERM and SIGHUP raise SystemExit(128 + N) instead of killing the
    process where it stands, so the cleanup runs (a temporary ``--output`` file is removed). The
    previous handlers come back afterwards: tests call :func:`main` in their own process."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    # A signal already ignored stays ignored (`nohup` ignores SIGHUP on purpose).
    replaced = [number for number in STOPPING_SIGNALS if signal.getsignal(number) == signal.SIG_DFL]
    for number in replaced:
        signal.signal(number, _exit_on_signal)
    try:
        yield
    finally:
        for number in replaced:
            signal.signal(number, signal.SIG_DFL)


@contextlib.contextmanager
def _stderr_that_may_close() -> Iterator[None]:
    """While the command runs, a broken pipe on stderr drops progress and messages; the export
    carries on (see :class:`StderrThatMayClose`)."""
    stderr = sys.stderr
    sys.stderr = cast("TextIO", StderrThatMayClose(stderr))
    try:
        yield
    finally:
        sys.stderr = stderr


def _exit_on_signal(number: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_SIGNAL_BASE + number)


def _writes_file(args: argparse.Namespace) -> bool:
    return args.output not in (None, "-")


def _check_output(args: argparse.Namespace) -> None:
    """Parquet needs a file (its footer is written last; a pipe cannot be read before it) and pyarrow."""
    from airflow_provider_mixpanel.compression import DEFAULT_PARQUET_COMPRESSION, check_parquet_compression
    from airflow_provider_mixpanel.errors import MixpanelConfigError

    if args.output_format != "parquet":
        return
    if not _writes_file(args):
        raise MixpanelConfigError(
            "--format parquet writes a file, not a pipe (Parquet's footer comes last): add --output FILE.parquet."
        )
    check_parquet_compression(DEFAULT_PARQUET_COMPRESSION, None, where="--format parquet: ")


def _writer(args: argparse.Namespace, sink: IO[bytes]) -> Any:
    """What the records are written to: the sink itself (JSONL) or a Parquet encoder writing into it."""
    if args.output_format == "jsonl":
        return sink
    from airflow_provider_mixpanel.schemas import record_columns
    from airflow_provider_mixpanel.transfers.parquet import ParquetLines

    return ParquetLines(sink, record_columns(args.command, raw=getattr(args, "raw", False)))


def _resolve_connection(conn_id: str) -> Any:
    """The connection from the first store that has it, in Airflow's own order: the configured
    secrets backend, then the ``AIRFLOW_CONN_<ID>`` environment variable, then the metadata database.

    Not ``BaseHook.get_connection``: on Airflow 3 that is the Task SDK's lookup, which outside a
    task searches only the secrets backend and environment variables (a task reaches the database
    through the execution API server, which a terminal has not got). The core model's lookup, which
    ``airflow connections get`` uses, searches the server-side chain, the database included, on
    Airflow 3 as on 2.11. Raises ``AirflowNotFoundException`` when no store has the id.
    """
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def _open_stream(args: argparse.Namespace, connection: Any, retry: RetryPlan) -> tuple[Any, Any]:
    """The client and the stream of JSONL lines the arguments ask for (the request waits for the
    first line). ``connection`` is the one read from the environment, or ``None``: Airflow finds it."""
    import warnings

    from airflow_provider_mixpanel.client import MixpanelClient
    from airflow_provider_mixpanel.connection import legacy_secret_notice, settings_from_connection
    from airflow_provider_mixpanel.kinds import Opening, open_stream
    from airflow_provider_mixpanel.streams import open_identity_stream

    if connection is None:
        connection = _resolve_connection(args.conn_id)
    settings = settings_from_connection(
        conn_id=args.conn_id,
        login=connection.login,
        password=connection.password,
        host=connection.host,
        port=connection.port,
        extra=connection.extra_dejson,
    )
    if settings.username is None:
        warnings.warn(legacy_secret_notice(f"connection {args.conn_id!r}"), DeprecationWarning, stacklevel=1)
    timeout = {} if retry.connect_timeout is None else {"connect_timeout": retry.connect_timeout}
    client = MixpanelClient.from_settings(settings, retry_policy=retry.policy, **timeout)
    if args.command == "identity":
        return client, open_identity_stream(
            client,
            args.from_date,
            args.to_date,
            timezone=settings.project_timezone,
            skip_malformed=args.skip_malformed,
            encode=True,
        )
    kind = KINDS[args.command]
    query = kind.query_type.build({name: getattr(args, name, None) for name in kind.query_type.arguments()})
    days = kind.days(getattr(args, "from_date", None), getattr(args, "to_date", None))
    opening = Opening(query, days, raw=args.raw, encode=True, project_timezone=settings.project_timezone)
    # Raw lines as sent, checked a batch at a time, where the kind has that road.
    chunks = kind.raw_chunks(client, opening, skip_malformed=args.skip_malformed) if args.raw else None
    if chunks is None:
        chunks = open_stream(client, kind, opening, skip_malformed=args.skip_malformed)
    return client, chunks


def _write(stream: Any, out: IO[bytes], progress: Progress) -> int:
    """Write every piece of ``stream`` (a JSONL line, or many lines at once) in writes of about
    WRITE_BUFFER_BYTES; flush at least every FLUSH_INTERVAL (a slow stream reaches `| jq` as it
    comes) and show progress when due. Returns the records written (``stream.records``)."""
    last_flush = time.monotonic()
    written = pending_size = 0
    pending: list[bytes] = []
    try:
        for piece in stream:
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= WRITE_BUFFER_BYTES:
                out.write(pending[0] if len(pending) == 1 else b"".join(pending))
                written += pending_size
                pending.clear()
                pending_size = 0
                now = time.monotonic()
                if now - last_flush >= FLUSH_INTERVAL:
                    out.flush()
                    last_flush = now
                if progress.due(now):
                    progress.show(stream.records, written, now)
    except Exception as err:
        if pending and not isinstance(err, OSError):  # the records before a bad one still go out, as they came
            out.write(b"".join(pending))
        raise
    if pending:
        out.write(b"".join(pending))
    return int(stream.records)


def _fail(
    err: BaseException, debug: bool, code: int, message: str | None = None, *, progress: Progress | None = None
) -> int:
    if progress is not None:
        progress.clear()
    if debug:
        import traceback

        traceback.print_exception(err, file=sys.stderr)
    text = " ".join((message or str(err)).split())
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return code


def _close_quietly(records: Any) -> None:
    close = getattr(records, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):  # the process is leaving; nothing to report
            close()


def _import_airflow(debug: bool) -> None:
    """Import Airflow (to search its connection stores) without its start-up noise."""
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "DEBUG" if debug else "ERROR")
    with warnings.catch_warnings():  # Airflow 2 prints deprecation notices while it is imported
        if not debug:
            warnings.simplefilter("ignore")
        import airflow  # noqa: F401


def _configure_logging(debug: bool, progress: Progress) -> None:
    """Keep stderr for progress and errors: Airflow's and urllib3's logs only with --debug; this
    package's warnings (a retry, a wait for the hourly quota) always, each on a line of its own."""
    level = logging.DEBUG if debug else logging.WARNING
    handler = _ProgressAwareHandler(progress)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # This package's own lines read like the command's: "mixpanel-stream: warning: ...".
    ours = logging.getLogger("airflow_provider_mixpanel")
    own_handler = _ProgressAwareHandler(progress)
    own_handler.setFormatter(_CommandFormatter(f"{PROG}: %(levelname)s: %(message)s"))
    ours.setLevel(level)
    ours.addHandler(own_handler)
    ours.propagate = False  # once, through our handler, whatever Airflow made of the root logger
    logging.getLogger("airflow").setLevel(logging.DEBUG if debug else logging.ERROR)
    # A store that cannot be read (Airflow 2 logs the database's traceback at ERROR) matters only
    # when no store has the connection, which is one error line; --debug shows why.
    logging.getLogger("airflow.models.connection").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    if not debug:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("always", message=".*legacy project secret.*")
        warnings.showwarning = _one_line_warning


class _CommandFormatter(logging.Formatter):
    """Levels in lower case, as a command's messages are (``warning:``, like ``error:``)."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "levelname": record.levelname.lower()})
        return super().format(record)


class _ProgressAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records on stderr, on a line of their own: a live progress line is erased first."""

    def __init__(self, progress: Progress):
        super().__init__(sys.stderr)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.clear()
        super().emit(record)


def _one_line_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
