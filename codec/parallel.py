"""Compression on a Dask cluster: workers code an archive's chunks, this process writes them in order.

The chunks are cut here exactly as one process cuts them (``api.ArchiveWriter``) and each is coded
by the same deterministic integer path, so the archive is byte-identical to the one-process file
whatever the number of workers. The model file's bytes go to every worker once (``scatter``
with ``broadcast``); each worker process builds the model once and keeps it. At most
``in_flight`` chunks are out at a time, so memory stays bounded however large the dataset.

    >>> with DaskPool(workers=2) as pool:                                   # doctest: +SKIP
    ...     codec.compress_file("train.npy", "train.npy.aec", pool=pool)
"""

from __future__ import annotations

from collections import deque

SCATTER_BYTES = 4 << 20
_MODELS: dict = {}  # in a worker process: fingerprint -> Model, built once
_BUILT = [0]  # models built by this process, counted


def models_built() -> int:
    """How many times this (worker) process has built a model: once per model, however many chunks."""
    return _BUILT[0]


def encode_chunk(fingerprint: str, model_bytes: bytes, level: tuple, batch, min_bytes: int) -> bytes:
    """A chunk's coded stream, computed on a worker (the model built on its first chunk)."""
    from codec import modelfile
    from codec.model import Model

    if fingerprint not in _MODELS:
        model = Model(modelfile.loads(model_bytes, what="model sent to the worker"), source="dask worker")
        if model.fingerprint != fingerprint:
            raise ValueError("the model a worker received is not the one asked for")
        _MODELS[fingerprint] = model
        _BUILT[0] += 1
    return _MODELS[fingerprint].level_for(*level).encode(batch, min_bytes=min_bytes)


class DaskPool:
    """A Dask client to code chunks on: a local cluster of ``workers`` processes (one thread each), or
    the cluster at ``scheduler`` (an address such as ``tcp://host:8786``), whose workers can import aecodec."""

    def __init__(self, workers: int | None = 2, *, scheduler: str | None = None, in_flight: int | None = None):
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if scheduler is None:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=40)
            self.client = Client(self._cluster)
        else:
            self.client = Client(scheduler, timeout="10s")
        self.workers = max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))
        self.in_flight = in_flight or 2 * self.workers
        self._scattered: dict[str, object] = {}

    def encoder(self, model) -> ChunkEncoder:
        """Codes chunks with ``model`` (a loaded ``Model`` whose ``source`` is its file)."""
        from codec import modelfile

        if model.fingerprint not in self._scattered:
            data = modelfile.read(model.source)
            self._scattered[model.fingerprint] = self.client.scatter(data, broadcast=True)
        return ChunkEncoder(self, model.fingerprint, self._scattered[model.fingerprint])

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


class ChunkEncoder:
    """What ``api.ArchiveWriter`` hands its chunks to: ``submit`` now, ``ready`` in order."""

    def __init__(self, pool: DaskPool, fingerprint: str, model_future):
        self.pool, self.fingerprint, self._model = pool, fingerprint, model_future
        self._queue: deque = deque()

    def submit(self, level: tuple, batch, min_bytes: int, shape) -> None:
        """Code ``batch`` at ``level`` ((quality, max_error, depth), as ``Model.level_for`` takes it)."""
        # a large chunk goes as data of its own (Dask warns of large task graphs); small ones ride with the task
        images = self.pool.client.scatter(batch) if batch.nbytes > SCATTER_BYTES else batch
        future = self.pool.client.submit(encode_chunk, self.fingerprint, self._model, level, images, min_bytes, pure=False)
        self._queue.append((len(batch), future, shape))

    def ready(self, *, all_of_them: bool = False):
        """(n, data, shape) of the oldest chunks, in order, while more than ``in_flight`` are out (or all)."""
        keep = 0 if all_of_them else self.pool.in_flight
        while len(self._queue) > keep:
            n, future, shape = self._queue.popleft()
            yield n, future.result(), shape

    def cancel(self) -> None:
        for _, future, _ in self._queue:
            future.cancel()
        self._queue.clear()
