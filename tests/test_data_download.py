"""Downloads against a local HTTP server on 127.0.0.1 (never the outside network): success,
a transfer cut off half-way, a checksum mismatch; neither failure may leave a trusted file."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATASETS

from chainrule import data
from chainrule.data import registry
from chainrule.data.download import download_url, payload_md5
from chainrule.data.synthetic import write_idx_dataset


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.delenv("CHAINRULE_MIRROR", raising=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut: set[str] = set()  # paths whose transfer stops half-way (Content-Length promises all)

    def do_GET(self) -> None:  # noqa: N802
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"files": {}, "cut": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_ok(server, tmp_path, capsys):
    handler, url = server
    body = bytes(range(256)) * 4000
    handler.files["/f.bin"] = body
    dest = download_url(
        url + "/f.bin", tmp_path / "d" / "f.bin", md5=hashlib.md5(body).hexdigest(), progress=True
    )
    assert dest.read_bytes() == body
    assert _leftovers(tmp_path / "d") == ["f.bin"]
    err = capsys.readouterr().err
    assert "Downloading f.bin" in err and "100.0%" in err


def test_cut_transfer_leaves_nothing(server, tmp_path):
    handler, url = server
    handler.files["/f.bin"] = b"x" * 100_000
    handler.cut.add("/f.bin")
    with pytest.raises(data.DownloadError, match="f.bin"):
        download_url(url + "/f.bin", tmp_path / "d" / "f.bin", progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    handler, url = server
    handler.files["/f.bin"] = b"tampered" * 1000
    with pytest.raises(data.DownloadError, match="md5 .* does not match"):
        download_url(url + "/f.bin", tmp_path / "d" / "f.bin", md5="0" * 32, progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_http_error_and_bad_url(server, tmp_path):
    _, url = server
    with pytest.raises(data.DownloadError, match="404"):
        download_url(url + "/missing", tmp_path / "m", progress=False)
    with pytest.raises(data.DownloadError):
        download_url("not-a-url", tmp_path / "m", progress=False)
    assert _leftovers(tmp_path) == []


def test_payload_md5_of_gz_is_of_the_decompressed_bytes(tmp_path):
    d = write_idx_dataset(tmp_path, n_train=5, n_test=5)
    assert d["x_train"].shape == (5, 1, 28, 28)
    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    import gzip

    assert payload_md5(gz) == hashlib.md5(gzip.decompress(gz.read_bytes())).hexdigest()


# (data set, file); not CIFAR-10: ../shared holds an archive rebuilt from the original pixels, whose
# bytes (and so md5) differ from the canonical download's
SHIPPED = [(name, f) for name in ("mnist", "fashion-mnist") for f in registry.SPECS[name].downloads]


@pytest.mark.parametrize(("name", "fname"), SHIPPED)
def test_the_shipped_checksums_are_those_of_the_real_files(name, fname):
    """The download tests below serve synthetic files under their own checksums; these are the
    constants a real download is checked against, on the real files where ../shared has them."""
    path = SHARED_DATASETS / name / fname
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    assert payload_md5(path) == registry.SPECS[name].downloads[fname]


@pytest.fixture
def mnist_mirror(server, tmp_path, monkeypatch):
    """Serve a synthetic MNIST and make the registry expect its checksums."""
    handler, url = server
    src = tmp_path / "src"
    want = write_idx_dataset(src, n_train=40, n_test=10)
    sums = {}
    for fname in registry.SPECS["mnist"].downloads:
        handler.files["/" + fname] = (src / fname).read_bytes()
        sums[fname] = payload_md5(src / fname)
    spec = dataclasses.replace(registry.SPECS["mnist"], downloads=sums)
    monkeypatch.setitem(registry.SPECS, "mnist", spec)
    return handler, url, want


def test_load_downloads_when_allowed(mnist_mirror, tmp_path):
    _, url, want = mnist_mirror
    root = tmp_path / "root"
    with pytest.raises(data.DatasetNotFoundError):
        data.load("mnist", root=root)  # offline by default: fails at once
    ds = data.load("mnist", root=root, download=True, mirror=url + "/", progress=False)
    np.testing.assert_array_equal(ds.x_train, want["x_train"])
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(registry.SPECS["mnist"].downloads)
    np.testing.assert_array_equal(data.load("mnist", root=root).y_test, want["y_test"])  # no download now


def test_mirror_env_var(mnist_mirror, tmp_path, monkeypatch):
    _, url, want = mnist_mirror
    monkeypatch.setenv("CHAINRULE_MIRROR", url)
    ds = data.load("mnist", root=tmp_path / "r", download=True, progress=False)
    np.testing.assert_array_equal(ds.y_train, want["y_train"])


@pytest.mark.parametrize("fault", ["cut", "tampered"])
def test_failed_download_leaves_nothing_trusted(mnist_mirror, tmp_path, fault):
    handler, url, _ = mnist_mirror
    victim = "/t10k-images-idx3-ubyte.gz"
    if fault == "cut":
        handler.cut.add(victim)
    else:
        handler.files[victim] = handler.files["/train-images-idx3-ubyte.gz"]  # valid gzip, wrong payload
    root = tmp_path / "root"
    with pytest.raises(data.DownloadError, match="t10k-images-idx3-ubyte.gz") as e:
        data.load("mnist", root=root, download=True, mirror=url, progress=False)
    assert "Put the four IDX files" in str(e.value)
    assert "t10k-images-idx3-ubyte.gz" not in _leftovers(root / "mnist")
    assert not any(n.endswith(".part") for n in _leftovers(root / "mnist"))
    with pytest.raises(data.DatasetNotFoundError):  # a later offline load does not trust anything
        data.load("mnist", root=root)
    assert not (tmp_path / "cache" / "arrays").exists() or not any((tmp_path / "cache" / "arrays").iterdir())
    # once the mirror is fixed, the files already verified are kept and only the rest is fetched
    handler.cut.clear()
    handler.files[victim] = (tmp_path / "src" / victim[1:]).read_bytes()
    assert len(data.load("mnist", root=root, download=True, mirror=url, progress=False).y_test) == 10


def test_corrupt_local_file_is_replaced(mnist_mirror, tmp_path):
    _, url, want = mnist_mirror
    folder = tmp_path / "root" / "mnist"
    folder.mkdir(parents=True)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    ds = data.load("mnist", root=tmp_path / "root", download=True, mirror=url, progress=False)
    np.testing.assert_array_equal(ds.y_test, want["y_test"])
