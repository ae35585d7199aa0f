"""Compression on a Dask cluster: workers code an archive's chunks, this process writes them in
order.

The chunks are cut here exactly as one process cuts them (``api.ArchiveWriter``) and each is coded
by the same deterministic integer path, so the archive is byte-identical to the one-process file
whatever the number of workers. The model file's bytes go to every worker once (``scatter``
with ``broadcast``); each worker process builds the model once and keeps it. At most
``in_flight`` chunks are out at a time, so memory stays bounded however large the dataset.

    >>> with DaskPool(workers=2) as pool:                                   # doctest: +SKIP
    ...     codec.compress_file("train.npy", "train.npy.aec", pool=pool)

A scheduler's address is checked before anything connects (``scheduler_address``), and the
client talks to that address only: a first connection must complete Dask's handshake within
``CONNECT_SECONDS``, so a wrong port fails at once, and a server of another protocol cannot
have its reply read as a frame length (an HTTP server's "HTTP/1.1" is 3.5 EiB).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import threading
from collections import deque
from multiprocessing import resource_tracker

from codec import signals
from codec.checks import effort_level
from codec.errors import ClusterError
from codec.levels import modelfile
from codec.levels.model import Model

# DASK_IMPORT: Dask is imported where a pool first needs it: dask.distributed takes 0.4 s to
# import (python -X importtime), which every run without a pool would pay.

SCATTER_BYTES = 4 << 20
CONNECT_SECONDS = 2.0  # a scheduler answers in milliseconds: a wrong address must not hold the user
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")  # a host name's part between dots (RFC 1123)
_MODELS: dict = {}  # in a worker process: fingerprint -> Model, built once
_BUILT = [0]  # models built by this process, counted


def models_built() -> int:
    """How many times this (worker) process has built a model: once per model, however many
    chunks."""
    return _BUILT[0]


def encode_chunk(fingerprint: str, model_bytes: bytes, level: dict, batch, min_bytes: int) -> bytes:
    """A chunk's coded stream, computed on a worker (the model built on its first chunk)."""
    if fingerprint not in _MODELS:
        model = Model(
            modelfile.loads(model_bytes, what="model sent to the worker"), source="dask worker"
        )
        if model.fingerprint != fingerprint:
            raise ValueError("the model a worker received is not the one asked for")
        _MODELS[fingerprint] = model
        _BUILT[0] += 1
    level = dict(level)
    effort = level.pop("effort", 0)  # the encoder's, not the header's
    return effort_level(_MODELS[fingerprint].level_of(level), effort).encode(
        batch, min_bytes=min_bytes
    )


class DaskPool:
    """A Dask client to code chunks on: a local cluster of ``workers`` processes (one thread each),
    or the cluster at ``scheduler`` (an address such as ``tcp://host:8786``), whose workers can
    import aecodec.

    Raises:
        ValueError: ``scheduler`` is not an address (see ``scheduler_address``).
        ClusterError: the scheduler cannot be reached, or what answers is not one.
    """

    def __init__(
        self, workers: int | None = 2, *, scheduler: str | None = None, in_flight: int | None = None
    ):
        self._cluster = self.client = None
        try:
            if scheduler is None:
                self._start_local(workers)
            else:
                self.client = _connect(scheduler_address(scheduler))
            self.workers = max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))
        except BaseException:  # a Ctrl-C too: the processes started so far are closed, not left
            self.close()
            raise
        self.in_flight = in_flight or 2 * self.workers
        self._scattered: dict[str, object] = {}

    def _start_local(self, workers: int | None) -> None:
        """A cluster of local processes that never see the terminal's Ctrl-C (each would print a
        traceback of its own): this process, their parent, gets it and closes them in order."""
        from dask.distributed import Client, LocalCluster  # lazily: DASK_IMPORT

        # Started here, not by the first worker: whichever thread starts it has SIGINT unblocked
        # after (the standard library's own mask for the tracker, lifted with SIG_UNBLOCK), and
        # passes that on to the processes it starts.
        resource_tracker.ensure_running()
        with signals.kept_from_new_threads():  # the cluster's threads start its worker processes
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            self.client = Client(self._cluster, set_as_default=False)
        # They share the user's terminal and speak through results: what they log when the pool
        # closes half-way (an interrupt) would follow aecodec's one line.
        self.client.run(logging.disable, logging.CRITICAL)

    def encoder(self, model) -> ChunkEncoder:
        """Codes chunks with ``model`` (a loaded ``Model`` whose ``source`` is its file)."""
        if model.fingerprint not in self._scattered:
            data = modelfile.read(model.source)
            self._scattered[model.fingerprint] = self.client.scatter(data, broadcast=True)
        return ChunkEncoder(self, model.fingerprint, self._scattered[model.fingerprint])

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def scheduler_address(text: str) -> str:
    """``tcp://HOST:PORT`` from ``tcp://HOST:PORT`` or ``HOST:PORT``, checked without connecting:
    HOST a name, an IPv4 address or an IPv6 one in brackets (``[::1]:8786``), PORT 1 to 65535.

    Raises:
        ValueError: anything else, saying what is wrong.
    """
    rest = text.removeprefix("tcp://")
    if "://" in rest:
        raise ValueError(
            f"{text!r}: only tcp:// addresses are taken (tcp://HOST:PORT or HOST:PORT)"
        )
    if rest.startswith("["):
        host, bracket, port = rest[1:].partition("]:")
        if not bracket:
            raise ValueError(f"{text!r}: an IPv6 address is written [ADDRESS]:PORT")
        _check_ip(text, host)
        host = f"[{host}]"
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            raise ValueError(f"{text!r}: no port (HOST:PORT, e.g. tcp://scheduler:8786)")
        _check_host(text, host)
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port {port!r} is not a number from 1 to 65535")
    return f"tcp://{host}:{int(port)}"


def _check_host(text: str, host: str) -> None:
    """A host name (RFC 1123) or an IPv4 address; raises ValueError saying what else it is."""
    if not host:
        raise ValueError(f"{text!r}: no host before the port")
    if ":" in host:
        raise ValueError(f"{text!r}: an IPv6 address is written in brackets, [ADDRESS]:PORT")
    if re.fullmatch(r"[0-9]+", host.rsplit(".", 1)[-1]):  # "10.1" or "1.2.3" would be read as IPv4
        _check_ip(text, host)
        return
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{text!r}: {host!r} is not a host name (letters, digits, '-' and '.')")


def _check_ip(text: str, host: str) -> None:
    """An IP address one can connect to; raises ValueError otherwise."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if ip.is_unspecified or ip.is_multicast:
        raise ValueError(f"{text!r}: {host} is not an address to connect to")


def _connect(address: str):
    """A client of the scheduler at ``address`` (as ``scheduler_address`` gives it), and of it only:
    data goes through the scheduler, never straight to the addresses its workers announce.

    Raises:
        ClusterError: refused, unknown host, no handshake in time, or not Dask's protocol.
    """
    from dask.distributed import Client  # lazily: DASK_IMPORT

    _handshake(address)
    try:
        return Client(
            address, timeout=CONNECT_SECONDS, direct_to_workers=False, set_as_default=False
        )
    except Exception as e:  # noqa: BLE001 - what the peer sent went through Dask's parsers
        raise ClusterError(f"cannot use the Dask scheduler at {address}: {_why(e)}") from None


def _handshake(address: str) -> None:
    """Connect to ``address`` once, go through Dask's handshake and close, in ``CONNECT_SECONDS``.

    Not ``distributed.comm.connect``: it retries a refused port until its timeout (then reports the
    last attempt's timeout, not the refusal), and does not bound the handshake's read (a server
    that accepts and stays silent held it until it closed).

    Raises:
        ClusterError: as ``_connect``.
    """
    from distributed.comm.addressing import parse_address  # lazily: DASK_IMPORT
    from distributed.comm.registry import get_backend

    async def attempt():
        scheme, location = parse_address(address)
        comm = await get_backend(scheme).get_connector().connect(location, deserialize=True)
        try:
            await comm.write(comm.handshake_info())
            await comm.read()  # the scheduler's half; a reply of another protocol fails here
        finally:
            await comm.close()

    failed: list[Exception] = []

    def run():
        try:
            asyncio.run(asyncio.wait_for(attempt(), CONNECT_SECONDS))
        except Exception as e:  # noqa: BLE001 - what the peer sent went through Dask's parsers
            failed.append(e)

    # A thread of its own: the caller's may run an event loop already (a notebook's), and a
    # Ctrl-C here interrupts the join at once (the thread ends within CONNECT_SECONDS).
    thread = threading.Thread(target=run, name="aecodec scheduler handshake", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise ClusterError(f"cannot use the Dask scheduler at {address}: {_why(failed[0])}")


def _why(error: BaseException) -> str:
    """What a failed connection comes to, in words, from the exception and its causes."""
    chain = [error]
    while len(chain) < 8 and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)

    def found(*kinds):
        return any(isinstance(e, kinds) for e in chain)

    if found(ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if found(socket.gaierror):
        return "unknown host"
    closed = ("CommClosedError", "StreamClosedError")  # Dask's and Tornado's, both OSErrors
    if found(ConnectionError) or any(type(e).__name__ in closed for e in chain):
        return "the connection was closed during Dask's handshake (not a Dask scheduler?)"
    if found(TimeoutError, asyncio.TimeoutError):
        return f"no Dask handshake within {CONNECT_SECONDS:g} s"
    system = [e for e in chain if isinstance(e, OSError) and e.strerror]
    if system:  # no route to host, network unreachable, ...
        return system[0].strerror
    return "what answers there is not a Dask scheduler (its reply is not Dask's protocol)"


class ChunkEncoder:
    """What ``api.ArchiveWriter`` hands its chunks to: ``submit`` now, ``ready`` in order."""

    def __init__(self, pool: DaskPool, fingerprint: str, model_future):
        self.pool, self.fingerprint, self._model = pool, fingerprint, model_future
        self._queue: deque = deque()

    def submit(self, level: dict, batch, min_bytes: int, shape) -> None:
        """Code ``batch`` at ``level`` (the header's quality, max_error and depth, as
        ``Model.level_of`` reads them)."""
        # a large chunk goes as data of its own (Dask warns of large task graphs); small
        # ones ride with the task
        images = self.pool.client.scatter(batch) if batch.nbytes > SCATTER_BYTES else batch
        future = self.pool.client.submit(
            encode_chunk, self.fingerprint, self._model, level, images, min_bytes, pure=False
        )
        self._queue.append((len(batch), future, shape))

    def ready(self, *, all_of_them: bool = False):
        """(n, data, shape) of the oldest chunks, in order, while more than ``in_flight`` are out
        (or all)."""
        keep = 0 if all_of_them else self.pool.in_flight
        while len(self._queue) > keep:
            n, future, shape = self._queue.popleft()
            yield n, future.result(), shape

    def cancel(self) -> None:
        for _, future, _ in self._queue:
            future.cancel()
        self._queue.clear()
