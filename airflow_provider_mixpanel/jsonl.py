"""Split a byte stream into JSONL lines on ``b"\\n"`` only.

``str.splitlines()`` (and so ``requests.iter_lines(decode_unicode=True)``) also breaks on U+2028,
U+2029, U+0085 and 0x1C-0x1E, which JSON allows raw inside strings; Mixpanel exports contain them,
and splitting there corrupts records. Splitting the *bytes* on ``\\n`` is safe: in UTF-8 the byte
0x0A never occurs inside a multi-byte character, and JSON escapes a newline inside a string.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each non-empty line of the concatenated ``chunks``, without its ``\\n``.

    Lines may span any number of chunks; a last line without a trailing newline is yielded too.
    A line's pieces are joined once, when its end arrives, so a very long line costs linear time.
    """
    pending: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            if chunk:
                pending.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if pending:
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending = []
        tail = lines.pop()
        if tail:
            pending.append(tail)
        for line in lines:
            if line:
                yield line
    if pending:
        yield b"".join(pending)
