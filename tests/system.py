"""Debian packages a test needs (a browser, a database server), installed by the test setup itself.

Where they cannot be installed (no root, no apt-get), the test is skipped with the reason; under CI
(``CI`` set) it fails instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_updated = False


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def require_debian_package(package: str, binary: str) -> str:
    """The path of ``binary``, installing ``package`` with apt-get first if it is missing."""
    global _updated
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        skip_or_fail(f"{binary} is missing and Debian package {package} cannot be installed here "
                     "(needs root and apt-get)")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    if not _updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        _updated = True
    result = subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True, text=True)
    found = shutil.which(binary)
    if result.returncode != 0 or not found:
        skip_or_fail(f"apt-get install {package} failed: {result.stderr.strip()[-300:]}")
    assert found is not None
    return found
