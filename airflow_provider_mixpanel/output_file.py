"""Where ``mixpanel-stream --output`` writes: :func:`open_output`, which never destroys what it did not make.

A regular file (or a name not yet taken) is written under a temporary name beside it and renamed
over the target only once the export is complete: a failed export leaves a file that was there
exactly as it was, and no partial file. A symlink is followed: to a regular file or to nothing, the
file it points to is replaced that way (the link stays a link); to anything else, that is written
in place. Anything else (a device such as ``/dev/null``, a FIFO, ``/dev/stdout``) is written in
place, the way a shell's ``>`` does, and is never removed or renamed over: it was not ours to remove.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from typing import BinaryIO

# Records reach the file in writes of this size: few system calls, little memory.
WRITE_BUFFER_BYTES = 64 * 1024
# New files get the mode the shell's ``>`` would give them (minus the umask, applied by open()).
NEW_FILE_MODE = 0o666


class OutputFile:
    """A binary file for the export's bytes: :meth:`commit` once it is complete, :meth:`discard` if not.

    :param path: the ``--output`` argument.
    """

    def __init__(self, path: str):
        self.path = path
        self._temporary: str | None = None
        # The file a symlink names is the one replaced, not the link: a failed export must leave
        # the file the user had as it was, and the link keeps pointing where it did.
        self._replaced = os.path.realpath(path)
        try:
            before: os.stat_result | None = os.stat(path)  # follows links, unlike lstat
        except FileNotFoundError:  # a new name, or a link to nothing yet
            before = None
        if before is None or stat.S_ISREG(before.st_mode):
            self._temporary, fd = _create_beside(self._replaced, before)
        else:  # a device or FIFO (perhaps behind a link, like /dev/stdout): written in place, as ``>`` would
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, NEW_FILE_MODE)
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=WRITE_BUFFER_BYTES)

    @property
    def replaces(self) -> bool:
        """Whether the target is replaced by a rename on :meth:`commit` (a regular file or a new name)."""
        return self._temporary is not None

    def commit(self) -> None:
        """The export is complete: make it the target (on disk, then renamed over it)."""
        if not self.file.closed:
            self.file.flush()
        if self._temporary is None:
            self.file.close()
            return
        # The bytes reach the disk before the name does: after a crash the target is either the old
        # file or the whole new one.
        fd = os.open(self._temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.file.close()
        os.replace(self._temporary, self._replaced)
        self._temporary = None

    def discard(self) -> None:
        """The export failed or was stopped: remove what we made, leave the target as it was."""
        with contextlib.suppress(OSError):  # e.g. a broken pipe on a FIFO's last flush
            self.file.close()
        if self._temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._temporary)
            self._temporary = None


def _create_beside(path: str, before: os.stat_result | None) -> tuple[str, int]:
    """A new, empty, hidden file in the target's directory (so the rename stays on one file
    system), with the mode (and, for root, the owner) of the file it will replace."""
    directory, name = os.path.split(os.path.abspath(path))
    while True:
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
        except FileExistsError:
            continue
        break
    try:
        if before is not None:
            os.fchmod(fd, stat.S_IMODE(before.st_mode))
            with contextlib.suppress(PermissionError):  # only root may give a file away
                os.fchown(fd, before.st_uid, before.st_gid)
    except BaseException:
        os.close(fd)
        os.remove(temporary)
        raise
    return temporary, fd
