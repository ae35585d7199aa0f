import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest
from PIL import Image

from codec.errors import DataError
from codec.io import data, idx

from .test_cli import run


def test_fashion_mnist_loads_from_debian_package():
    test, labels = data.fashion_mnist("test", with_labels=True)
    assert test.shape == (10000, 28, 28) and test.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


def test_idx_roundtrip_raw_and_gzip(tmp_path):
    a = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    (tmp_path / "a.idx").write_bytes(idx.idx_bytes(a))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(a)))
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "a.idx"), a)
    np.testing.assert_array_equal(data.training_images(tmp_path / "a-idx3-ubyte.gz"), a)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x00\x08\x01", "bad magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01", "element type"),
        (b"\x00\x00\x08\x09", "header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "announces 5 bytes"),
    ],
)
def test_malformed_idx_is_a_data_error(raw, message):
    with pytest.raises(DataError, match=message):
        idx.parse_idx(raw)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        idx.read_idx(tmp_path / "nope.idx")


def test_fashion_mnist_from_user_path_and_env(tmp_path, monkeypatch):
    a = np.full((3, 28, 28), 7, np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx.idx_bytes(a))
    np.testing.assert_array_equal(data.fashion_mnist("test", path=tmp_path), a)
    monkeypatch.setenv("AECODEC_DATA", str(tmp_path))
    np.testing.assert_array_equal(data.fashion_mnist("test"), a)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist("train")


@pytest.fixture
def loopback_server(tmp_path):
    """A loopback HTTP server serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_verifies_checksum_over_loopback(loopback_server, tmp_path, monkeypatch):
    root, url = loopback_server
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    raw = idx.idx_bytes(images)
    filename = data.FASHION_MNIST[("test", "images")][0]
    (root / filename).write_bytes(gzip.compress(raw))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(
        data.FASHION_MNIST, ("test", "images"), (filename, hashlib.sha256(raw).hexdigest())
    )
    got = data.fashion_mnist("test", download_missing=True, base_url=url)
    np.testing.assert_array_equal(got, images)
    assert (tmp_path / "cache" / "aecodec" / "fashion-mnist" / filename).is_file()


def test_download_with_wrong_checksum_keeps_nothing(loopback_server, tmp_path):
    root, url = loopback_server
    (root / "x.gz").write_bytes(gzip.compress(b"not the data"))
    dest = tmp_path / "cache" / "x.gz"
    with pytest.raises(DataError, match="checksum mismatch"):
        data.download(url + "x.gz", dest, "0" * 64)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_download_failure_is_a_data_error(loopback_server, tmp_path):
    _, url = loopback_server
    with pytest.raises(DataError, match="download failed"):
        data.download(url + "missing.gz", tmp_path / "m.gz", "0" * 64)


def test_training_images_reads_png_grey_and_rgb(tmp_path):

    grey = np.random.default_rng(0).integers(0, 256, (9, 7), dtype=np.uint8)
    rgb = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_array_equal(data.training_images(tmp_path / "g.png")[0], grey)
    np.testing.assert_array_equal(data.training_images(tmp_path / "c.png")[0], rgb)


def test_npy_with_objects_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a readable .npy array"):
        data.training_images(tmp_path / "o.npy")


@pytest.mark.parametrize("header", [b"\0\0\x08\x03\0\0\0\0\0\0\0\x1c\0\0\0\x1c"])
def test_an_idx_of_no_images_is_a_clear_error(tmp_path, header):
    (tmp_path / "empty-idx3-ubyte").write_bytes(header)
    r = run("empty-idx3-ubyte", cwd=tmp_path)
    assert (
        r.returncode == 1 and b"holds no images" in r.stderr and b"internal error" not in r.stderr
    )
