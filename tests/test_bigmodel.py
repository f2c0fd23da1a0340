"""The generated model and the big-model run, small: the same command as the 32 GiB one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tools.demo.generated import BLOCK, GeneratedModel
from tools.demo.procs import Procs, start_origin

REPO = Path(__file__).resolve().parent.parent


def test_a_generated_model_is_the_same_bytes_however_it_is_read() -> None:
    model = GeneratedModel(5 * BLOCK + 123, shard=2 * BLOCK)
    assert list(model.files) == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                 "model-00003-of-00003.safetensors", "config.json"]
    assert model.total_size == 5 * BLOCK + 123 + 64
    name = "model-00002-of-00003.safetensors"
    whole = model.read(name, 0, 2 * BLOCK)
    assert len(whole) == 2 * BLOCK
    assert model.read(name, BLOCK - 10, 20) == whole[BLOCK - 10:BLOCK + 10]  # across a block boundary
    assert model.read("model-00003-of-00003.safetensors", BLOCK, 10 * BLOCK) == \
        model.read("model-00003-of-00003.safetensors", 0, BLOCK + 123)[BLOCK:]  # short at the file's end
    assert whole[:BLOCK] != whole[BLOCK:]  # no two MiB alike
    assert whole != model.read("model-00001-of-00003.safetensors", 0, 2 * BLOCK)
    assert GeneratedModel(5 * BLOCK + 123, shard=2 * BLOCK).read(name, 7, 99) == whole[7:106]
    assert GeneratedModel(5 * BLOCK + 123, seed=1, shard=2 * BLOCK).read(name, 7, 99) != whole[7:106]


def test_the_origin_serves_a_generated_model_by_range(procs: Procs) -> None:
    origin = start_origin(procs, None, generate="3MiB:5")
    model = GeneratedModel(3 * BLOCK, seed=5)
    answer = httpx.get(f"{origin}/model-00001-of-00001.safetensors", headers={"Range": "bytes=1000-2099999"})
    assert answer.status_code == 206
    assert answer.content == model.read("model-00001-of-00001.safetensors", 1000, 2099000)
    assert httpx.get(f"{origin}/nothing.safetensors").status_code == 404


@pytest.mark.parametrize("spec", ["0", "lots", "1GiB:x"])
def test_a_bad_generate_spec_is_one_line_and_exit_2(spec: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tools.demo.origin", "--generate", spec],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 2 and "error:" in done.stderr


def test_the_big_model_run_resumes_a_killed_client_and_activates_identical_bytes(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    done = subprocess.run([sys.executable, "-m", "tools.bench.bigmodel", "--sizes", "24MiB,48MiB",
                           "--piece-size", "1MiB", "--client-rate", "4MiB", "--report", str(tmp_path / "report.md"),
                           "--json", str(out)],
                          # The state is saved every 0.5 s, so the kill finds half of it saved.
                          env=os.environ | {"MODELTORRENT_CLIENT_RESUME_INTERVAL": "0.5"},
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads(out.read_text())
    for run in runs:
        assert run["identical"]
        assert 0 < run["pieces_at_kill"] < run["pieces"]
        assert run["verified_at_restart"] >= run["pieces_at_kill"]  # nothing verified is fetched again
        # What was missing, and at most the pieces in flight at the kill (4 MiB here) on top.
        assert run["missing_at_restart"] - 4 * BLOCK <= run["downloaded_after_restart"] <= run["missing_at_restart"]
        assert run["state_bytes"] > 0 and run["second_run_peak_rss"] > 0
    report = (tmp_path / "report.md").read_text()
    assert "projected to 500 GB" in report and "| yes | yes |" in report
