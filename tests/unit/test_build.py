"""The build: FASTSIO_NO_EXTENSIONS=1 gives a pure wheel; a failed compile fails the build loudly."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILED = os.environ.get("FASTSIO_NO_EXTENSIONS", "") in ("", "0")

pytestmark = pytest.mark.skipif(not COMPILED, reason="build checks run once, in the compiled pass")


def _source_copy(dest: Path) -> Path:
    """The files a source distribution has, without build output from this checkout."""
    src = dest / "src"
    shutil.copytree(ROOT / "fastsio", src / "fastsio",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__", "static"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return src


def test_pure_wheel_has_no_extensions(tmp_path: Path) -> None:
    src = _source_copy(tmp_path)
    env = dict(os.environ, FASTSIO_NO_EXTENSIONS="1")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-w", str(tmp_path / "dist"), str(src)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list((tmp_path / "dist").glob("fastsio-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert not [n for n in names if n.endswith(".so")]
    assert "fastsio/_pure/sio_codec.py" in names and "fastsio/demo/index.html" in names


def test_failed_compile_fails_the_build(tmp_path: Path) -> None:
    src = _source_copy(tmp_path)
    env = dict(os.environ, CC="false", LDSHARED="false")
    env.pop("FASTSIO_NO_EXTENSIONS", None)
    result = subprocess.run([sys.executable, "setup.py", "build_ext", "-b", str(tmp_path / "lib"),
                             "-t", str(tmp_path / "tmp")],
                            cwd=src, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert not list((tmp_path / "lib").rglob("*.so"))
