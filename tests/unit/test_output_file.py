"""OutputFile: --output replaces a regular file only when complete, and never removes what it did not make."""

from __future__ import annotations

import os
import stat
import threading

from airflow_provider_mixpanel.output_file import OutputFile


def _names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_commit_replaces_an_existing_file_keeping_its_mode(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"old\n")
    path.chmod(0o640)
    output = OutputFile(str(path))
    output.file.write(b"new\n")
    assert path.read_bytes() == b"old\n", "the target changed before the export was complete"
    output.commit()
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640, "the replaced file lost its mode"
    assert _names(tmp_path) == ["events.jsonl"], "a temporary file was left behind"


def test_discard_leaves_an_existing_file_as_it_was(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"keep me\n")
    output = OutputFile(str(path))
    output.file.write(b"partial")
    output.discard()
    assert path.read_bytes() == b"keep me\n"
    assert _names(tmp_path) == ["events.jsonl"], "a temporary file was left behind"


def test_discard_of_a_new_file_leaves_nothing(tmp_path):
    output = OutputFile(str(tmp_path / "new.jsonl"))
    output.file.write(b"partial")
    output.discard()
    assert _names(tmp_path) == []


def test_new_file_gets_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        output = OutputFile(str(tmp_path / "new.jsonl"))
        output.commit()
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.jsonl").stat().st_mode) == 0o644


def test_a_failed_export_through_a_symlink_leaves_the_real_file_as_it_was(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_bytes(b"keep me\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    output = OutputFile(str(link))
    output.file.write(b"partial")
    output.file.flush()
    assert real.read_bytes() == b"keep me\n", "the file behind the link changed before the export was complete"
    output.discard()
    assert link.is_symlink() and real.read_bytes() == b"keep me\n"
    assert _names(tmp_path) == ["link.jsonl", "real.jsonl"], "a temporary file was left behind"


def test_commit_through_a_symlink_replaces_the_real_file_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_bytes(b"old\n")
    real.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    output = OutputFile(str(link))
    output.file.write(b"new\n")
    output.commit()
    assert link.is_symlink() and os.readlink(link) == str(real), "the link was replaced by a file"
    assert real.read_bytes() == b"new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640, "the replaced file lost its mode"
    assert _names(tmp_path) == ["link.jsonl", "real.jsonl"]


def test_a_dangling_symlink_gets_its_file_only_when_the_export_is_complete(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(elsewhere / "real.jsonl")
    output = OutputFile(str(link))
    output.file.write(b"partial")
    output.discard()
    assert _names(elsewhere) == [], "a failed export left a partial file behind the link"
    output = OutputFile(str(link))
    output.file.write(b"line\n")
    output.commit()
    assert link.is_symlink() and (elsewhere / "real.jsonl").read_bytes() == b"line\n"
    assert _names(elsewhere) == ["real.jsonl"]


def test_a_symlink_to_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    output = OutputFile(str(link))
    output.file.write(b"line\n")
    output.discard()
    reader.join(timeout=10)
    assert received == [b"line\n"]
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _names(tmp_path) == ["link", "pipe"]


def test_a_fifo_is_written_in_place_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    output = OutputFile(str(fifo))
    output.file.write(b"line\n")
    output.discard()
    reader.join(timeout=10)
    assert received == [b"line\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was removed or replaced"
    assert _names(tmp_path) == ["pipe"]


def test_a_device_is_written_in_place_and_never_removed():
    output = OutputFile(os.devnull)
    output.file.write(b"line\n")
    output.discard()
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "/dev/null is no longer a device"
