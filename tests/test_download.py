"""torchvision's real download path, exercised offline: the canonical Fashion-MNIST files are
served from a local HTTP server on 127.0.0.1 and torchvision's mirror list points at it, so its
own fetch and MD5 checks run for real."""

import functools
import http.server
import threading

import pytest
import torchvision

from deepstudy.data import DataContext, load_dataset
from deepstudy.errors import DataError

from conftest import shared_or_skip


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    def serve(folder):
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
        monkeypatch.delenv("DEEPSTUDY_OFFLINE")
        servers.append(server)
    servers = []
    yield serve
    for s in servers:
        s.shutdown()


def ctx(root):
    return DataContext(root=root, log=lambda m: None)


def test_missing_data_is_downloaded_into_the_data_root(tmp_path, mirror):
    mirror(shared_or_skip("FashionMNIST", "raw"))
    data = load_dataset("fashion_mnist", ctx(tmp_path / "root"))
    assert data.source == str(tmp_path / "root" / "FashionMNIST" / "raw")
    assert (len(data.train), len(data.val), len(data.test)) == (54_000, 6_000, 10_000)
    assert data.test.class_counts(10) == [1000] * 10


def test_a_data_root_that_cannot_be_written_downloads_into_the_cache(tmp_path, mirror, monkeypatch):
    mirror(shared_or_skip("FashionMNIST", "raw"))
    monkeypatch.setenv("DEEPSTUDY_CACHE", str(tmp_path / "cache"))
    blocker = tmp_path / "a-file"
    blocker.write_text("a data root cannot be created under a file")
    data = load_dataset("fashion_mnist", ctx(blocker / "root"))
    assert data.source == str(tmp_path / "cache" / "data" / "FashionMNIST" / "raw")


def test_a_mirror_serving_corrupt_files_fails_with_the_clear_message(tmp_path, mirror):
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (bad / name).write_bytes(b"not the file you are looking for")
    mirror(bad)
    with pytest.raises(DataError, match="FashionMNIST not found"):
        load_dataset("fashion_mnist", ctx(tmp_path / "root"))
