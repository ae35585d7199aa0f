"""--scheduler connects to the address given and to it only, or says in one line, within seconds,
why not. Network rule of these tests: nothing but 127.0.0.1 is ever connected to; the syntax checks
are refused before any connection (connecting fails them)."""

import contextlib
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

from codec import cli, parallel  # noqa: E402 - after the skip: parallel's pool needs Dask

SLACK = 1.0  # seconds beyond parallel.CONNECT_SECONDS: a loaded machine's scheduling, not a retry


@pytest.fixture
def small(tmp_path, test_images):
    np.save(tmp_path / "small.npy", test_images[:3])
    return tmp_path / "small.npy"


@pytest.fixture
def no_connection(monkeypatch):
    def refuse(self, address, *_):
        raise AssertionError(f"connected to {address}: the address should have been refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize(
    "address, message",
    [
        ("localhost", "no port"),
        ("tcp://localhost:99999", "not a number from 1 to 65535"),
        ("tcp://localhost:0", "not a number from 1 to 65535"),
        ("localhost:80x", "not a number from 1 to 65535"),
        ("localhost:+80", "not a number from 1 to 65535"),
        ("inproc://localhost", "only tcp:// addresses"),
        ("tls://localhost:8786", "only tcp:// addresses"),
        ("tcp://:8786", "no host"),
        ("0.0.0.0:8786", "not an address to connect to"),
        ("[::1]", "[ADDRESS]:PORT"),
        ("::1:8786", "in brackets"),
        ("127.0.0:8786", "not an IP address"),
        ("local host:8786", "not a host name"),
        ("-localhost:8786", "not a host name"),
    ],
)
def test_an_address_that_is_not_tcp_host_port_is_refused_before_any_connection(
    small, capsys, no_connection, address, message
):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["-q", f"--scheduler={address}", "-o", str(small.with_suffix(".aec")), str(small)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --scheduler: " in err and message in err
    assert not small.with_suffix(".aec").exists()


def test_scheduler_address_writes_each_accepted_form_as_one_tcp_address(no_connection):
    assert parallel.scheduler_address("localhost:8786") == "tcp://localhost:8786"
    assert parallel.scheduler_address("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert parallel.scheduler_address("[::1]:8786") == "tcp://[::1]:8786"
    named = "tcp://scheduler-1.cluster:65535"
    assert parallel.scheduler_address(named) == named


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(answer):
    """A TCP server on 127.0.0.1 running ``answer(connection, stop)`` per connection; yields its
    port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                threading.Thread(target=answer, args=(connection, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def http(connection, stop):
    """An HTTP server's answer to bytes it does not understand (its "HTTP/1.1", read as a frame
    length, is 3.5 EiB)."""
    with connection, contextlib.suppress(OSError):
        connection.recv(4096)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        stop.wait(15)


def silent(connection, stop):
    """Accepts, then says nothing (for 15 s at most: the original code waited for it to close)."""
    with connection:
        stop.wait(15)


def compress_through(address: str, small, capsys) -> tuple[int, str, float]:
    """(exit status, stderr, seconds) of compressing ``small`` on the scheduler at ``address``."""
    start = time.monotonic()
    out = small.with_suffix(".aec")
    status = cli.main(["-q", "--scheduler", address, "-o", str(out), str(small)])
    return status, capsys.readouterr().err, time.monotonic() - start


def test_a_refused_port_fails_in_one_line_within_two_seconds(small, capsys):
    address = f"tcp://127.0.0.1:{free_port()}"
    status, err, seconds = compress_through(address, small, capsys)
    assert status == 1 and err == (
        f"aecodec: error: cannot use the Dask scheduler at {address}: "
        "connection refused (nothing listens on that port)\n"
    )
    assert seconds < parallel.CONNECT_SECONDS + SLACK and not small.with_suffix(".aec").exists()


def test_a_server_of_another_protocol_is_one_line_not_a_huge_allocation(small, capsys):
    with server(http) as port:
        status, err, seconds = compress_through(f"127.0.0.1:{port}", small, capsys)
    assert status == 1 and err.count("\n") == 1 and "is not a Dask scheduler" in err
    assert seconds < parallel.CONNECT_SECONDS + SLACK and not small.with_suffix(".aec").exists()


def test_a_server_that_never_answers_fails_within_two_seconds(small, capsys):
    with server(silent) as port:
        status, err, seconds = compress_through(f"127.0.0.1:{port}", small, capsys)
    assert status == 1 and err.count("\n") == 1 and "no Dask handshake within 2 s" in err
    assert seconds < parallel.CONNECT_SECONDS + SLACK and not small.with_suffix(".aec").exists()


CLUSTER = """
import sys
from dask.distributed import LocalCluster

if __name__ == "__main__":
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:
        print(cluster.scheduler_address, flush=True)
        sys.stdin.read()  # until the test closes it
"""


@pytest.mark.slow
def test_the_client_talks_to_the_scheduler_only_whatever_dask_is_configured(
    tmp_path, small, monkeypatch
):
    import dask

    (tmp_path / "cluster.py").write_text(CLUSTER)
    cluster = subprocess.Popen(
        [sys.executable, str(tmp_path / "cluster.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        address = cluster.stdout.readline().strip()
        seen = []
        connect = socket.socket.connect

        def recorded(self, to):
            seen.append(to[:2])
            return connect(self, to)

        monkeypatch.setattr(socket.socket, "connect", recorded)
        with dask.config.set({"distributed.client.direct-to-workers": True}):  # a user's setting
            out = tmp_path / "par.aec"
            assert cli.main(["-q", "--scheduler", address, "-o", str(out), str(small)]) == 0
    finally:
        cluster.stdin.close()
        cluster.wait(timeout=60)
    assert seen and set(seen) == {("127.0.0.1", int(address.rsplit(":", 1)[1]))}
    assert cli.main(["-q", "-o", str(tmp_path / "one.aec"), str(small)]) == 0
    assert (tmp_path / "par.aec").read_bytes() == (tmp_path / "one.aec").read_bytes()
