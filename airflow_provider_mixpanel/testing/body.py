"""Writing a response body that is never built whole: plain when small, else chunked (maybe gzip)."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from typing import Any

from airflow_provider_mixpanel.testing.faults import DropConnection, TruncateGzip

# Mixpanel gzips an export body only when it is larger than this many bytes.
GZIP_MIN_BYTES = 1400
# Pieces are batched into HTTP chunks of about this size.
CHUNK_BYTES = 64 * 1024


def send_stream(
    handler: Any,
    pieces: Iterator[bytes],
    *,
    content_type: str,
    gzip: bool,
    throttle: float | None,
    plain_up_to: int = GZIP_MIN_BYTES,
) -> None:
    """Send ``pieces`` as a 200 response through ``handler`` (a ``BaseHTTPRequestHandler``).

    A body of at most ``plain_up_to`` bytes goes whole, with ``Content-Length``; a larger one is
    sent chunked as it is produced (gzipped if ``gzip``), at most ``throttle`` bytes per second.
    A :class:`DropConnection` or :class:`TruncateGzip` raised by ``pieces`` is applied after
    everything before it has been sent; ``DropConnection`` is then raised again for the caller.
    """
    batch: list[bytes] = []
    size = 0
    stop: Exception | None = None
    exhausted = False
    try:
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size > plain_up_to:
                break
        else:
            exhausted = True
    except (DropConnection, TruncateGzip) as err:
        stop = err
    if exhausted and stop is None:
        body = b"".join(batch)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return
    gzip = gzip or isinstance(stop, TruncateGzip)
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Transfer-Encoding", "chunked")
    if gzip:
        handler.send_header("Content-Encoding", "gzip")
    handler.end_headers()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gzip else None
    started = time.monotonic()
    sent = 0
    while True:
        if not exhausted and stop is None:
            try:
                for piece in pieces:
                    batch.append(piece)
                    size += len(piece)
                    if size >= CHUNK_BYTES:
                        break
                else:
                    exhausted = True
            except (DropConnection, TruncateGzip) as err:
                stop = err
        data = b"".join(batch)
        batch, size = [], 0
        if compressor is not None:
            data = compressor.compress(data)
            if exhausted:
                data += compressor.flush()
            elif stop is not None:  # everything so far, but no gzip end marker
                data += compressor.flush(zlib.Z_SYNC_FLUSH)
        if data:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            sent += len(data)
            if throttle:
                ahead = sent / throttle - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        if isinstance(stop, DropConnection):
            handler.wfile.flush()
            raise stop
        if exhausted or stop is not None:
            break
    handler.wfile.write(b"0\r\n\r\n")
