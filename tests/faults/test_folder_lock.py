"""One writer per folder (synthssl.core.folder_lock): refusal naming the holder, release, stale holders."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from helpers.faults import wait_for

from synthssl.core.errors import OutputWriteError
from synthssl.core.folder_lock import LOCK_NAME, FolderInUseError, FolderLock, read_holder

HOLD = (
    "import sys, time\n"
    "from synthssl.core.folder_lock import FolderLock\n"
    "lock = FolderLock(sys.argv[1]).acquire()\n"
    "print('held', flush=True)\n"
    "time.sleep(60)\n"
)


def _holder_process(folder) -> subprocess.Popen:
    """A second process that takes the lock of ``folder`` and keeps it until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_names_its_holder_and_is_gone_after_release(tmp_path):
    folder = tmp_path / "new" / "run"
    with FolderLock(folder, "train.out") as lock:
        assert lock.created_folder and folder.is_dir()
        holder = read_holder(folder / LOCK_NAME)
        assert (holder.host, holder.pid) == (socket.gethostname(), os.getpid())
        assert holder.since.endswith("Z") and holder.command
    assert not (folder / LOCK_NAME).exists()
    assert folder.is_dir()  # the folder stays; only remove_folder_if_unused removes an unused one
    lock.remove_folder_if_unused()
    assert not folder.exists()


def test_a_second_taker_is_refused_in_one_line_naming_host_and_pid(tmp_path):
    proc = _holder_process(tmp_path)
    try:
        with pytest.raises(FolderInUseError) as info:
            FolderLock(tmp_path, "train.out").acquire()
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"train.out: {tmp_path} is in use by host {socket.gethostname()}, pid {proc.pid} (")
        assert message.endswith("wait for it to finish, or give another train.out")
        # the same process cannot hold it twice either (two writers in one process are two writers)
        with FolderLock(tmp_path / "other"):
            with pytest.raises(FolderInUseError):
                FolderLock(tmp_path / "other").acquire()
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_a_stale_file_that_is_taken_over(tmp_path):
    proc = _holder_process(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_holder(tmp_path / LOCK_NAME).pid == proc.pid  # the file stays, its flock is gone
    with FolderLock(tmp_path):
        assert read_holder(tmp_path / LOCK_NAME).pid == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_file_naming_a_live_pid_is_stale_when_nobody_holds_its_flock(tmp_path):
    """The flock decides: a copied run folder brings its lock file along, naming a live process."""
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    with FolderLock(tmp_path):
        assert read_holder(tmp_path / LOCK_NAME).pid == os.getpid()


@pytest.fixture
def no_flock(monkeypatch):
    """A filesystem without flock (ENOLCK): the lock falls back to O_EXCL and the holder's PID."""
    import fcntl

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)


def test_without_flock_a_dead_pid_on_this_host_is_stale_and_others_are_not(tmp_path, no_flock):
    path = tmp_path / LOCK_NAME
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid()}))
    with FolderLock(tmp_path):
        assert read_holder(path).pid == os.getpid()
        with pytest.raises(FolderInUseError) as info:  # O_EXCL: the live holder (this process) is seen
            FolderLock(tmp_path).acquire()
        assert f"pid {os.getpid()}" in str(info.value) and f"if that process is gone, delete {path}" in str(info.value)
    assert not path.exists()
    path.write_text(json.dumps({"host": "elsewhere", "pid": 4242, "command": "train-ssl demo"}))
    with pytest.raises(FolderInUseError) as info:
        FolderLock(tmp_path, "out").acquire()
    assert str(info.value) == (
        f"out: {tmp_path} is in use by host elsewhere, pid 4242 (train-ssl demo); one process writes a folder "
        f"at a time: if that process is gone, delete {path}"
    )


def test_a_file_or_an_unwritable_folder_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputWriteError) as info:
        FolderLock(blocker, kind="report folder").acquire()
    assert str(info.value) == f"cannot write into {blocker}: it is a file, not a folder; give a report folder"
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(LOCK_NAME):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputWriteError) as info:
        FolderLock(tmp_path).acquire()
    assert str(info.value) == f"cannot write into {tmp_path}: Read-only file system (EROFS)"


def test_a_waiting_taker_gets_the_lock_once_the_holder_exits(tmp_path):
    proc = _holder_process(tmp_path)
    try:
        subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {proc.pid}"])
        with FolderLock(tmp_path, wait_s=20):
            assert read_holder(tmp_path / LOCK_NAME).pid == os.getpid()
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not (tmp_path / LOCK_NAME).exists(), 5, "the lock file to go")
