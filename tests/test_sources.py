"""One contract for every source the seedbox reads from: a local path, an HTTP range origin and a
real S3-compatible server (moto's server mode, a separate process speaking the S3 HTTP API)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import SourceError
from seedbox.sources import S3Source, Source, open_source
from tests.conftest import write_model

FILES = {"model.safetensors": 300_000, "shards/part 1.bin": 70_000}  # a space: URL quoting matters
BUCKET = "models"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("model"), FILES, seed=5)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator[str]:
    import boto3

    from tools.demo.procs import Procs, start_s3

    procs = Procs(tmp_path_factory.mktemp("s3-logs"))
    try:
        endpoint = start_s3(procs)
        with pytest.MonkeyPatch.context() as env:
            for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "modeltorrent",
                               "AWS_SECRET_ACCESS_KEY": "modeltorrent", "AWS_DEFAULT_REGION": "us-east-1"}.items():
                env.setenv(key, value)
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=BUCKET)
            for rel in FILES:
                s3.upload_file(str(model / rel), BUCKET, f"llama/v1/{rel}")
            s3.close()
            yield endpoint
    finally:
        procs.stop_all()


@pytest.fixture(params=["local", "http", "s3"])
def source(request: pytest.FixtureRequest, model: Path, procs) -> Iterator[Source]:  # type: ignore[no-untyped-def]
    from tools.demo.procs import start_origin

    if request.param == "local":
        uri = str(model)
    elif request.param == "http":
        uri = start_origin(procs, model)
    else:
        request.getfixturevalue("s3_endpoint")
        uri = f"s3://{BUCKET}/llama/v1"
    src = open_source(uri)
    yield src
    src.close()


def test_reads_exact_ranges_and_counts_every_byte(source: Source, model: Path) -> None:
    whole = (model / "model.safetensors").read_bytes()
    assert source.read("model.safetensors", 0, 1000) == whole[:1000]
    assert source.read("model.safetensors", 123_457, 65_536) == whole[123_457:123_457 + 65_536]
    assert source.read("model.safetensors", len(whole) - 10, 10) == whole[-10:]
    assert source.read("shards/part 1.bin", 0, 70_000) == (model / "shards/part 1.bin").read_bytes()
    assert source.bytes_read == 1000 + 65_536 + 10 + 70_000


def test_reads_in_parallel_threads(source: Source, model: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    whole = (model / "model.safetensors").read_bytes()
    offsets = range(0, 290_000, 10_000)
    with ThreadPoolExecutor(8) as pool:
        chunks = list(pool.map(lambda o: source.read("model.safetensors", o, 10_000), offsets))
    assert chunks == [whole[o:o + 10_000] for o in offsets]
    assert source.bytes_read == 10_000 * len(offsets)


def test_http_ranges_one_after_another_share_one_connection(model: Path, procs) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from tools.demo.procs import start_origin

    url = start_origin(procs, model)
    whole = (model / "model.safetensors").read_bytes()
    with httpx.Client() as stats:  # its own connection, kept: counted once, before the reads
        before = stats.get(f"{url}/_stats").json()["connections"]
        source = open_source(url)
        try:
            for offset in range(0, 200_000, 40_000):
                assert source.read("model.safetensors", offset, 40_000) == whole[offset:offset + 40_000]
        finally:
            source.close()
        assert stats.get(f"{url}/_stats").json()["connections"] - before == 1


def test_a_missing_file_is_a_source_error(source: Source) -> None:
    with pytest.raises(SourceError):
        source.read("no-such-file.bin", 0, 10)


def test_a_file_shorter_than_the_manifest_says_is_a_source_error(source: Source) -> None:
    with pytest.raises(SourceError):
        source.read("shards/part 1.bin", 69_990, 100)  # runs past the end


def test_s3_errors_say_what_to_check(s3_endpoint: str) -> None:
    with pytest.raises(SourceError) as missing_bucket:
        S3Source("s3://no-such-bucket/x").read("a", 0, 1)
    assert missing_bucket.value.hint and "bucket" in missing_bucket.value.hint
    with pytest.raises(SourceError, match="no bucket"):
        open_source("s3:///just-a-path")
    assert os.environ["AWS_ENDPOINT_URL"] == s3_endpoint  # credentials and endpoint from the environment


def test_unknown_schemes_are_refused_with_the_supported_ones() -> None:
    with pytest.raises(SourceError) as exc:
        open_source("ftp://host/model")
    assert exc.value.hint and "s3://" in exc.value.hint
