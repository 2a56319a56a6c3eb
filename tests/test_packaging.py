"""What `pip install .` (not -e) installs: every folder of the source, as the package list in
pyproject.toml declares it. The editable installs that `make` and the tests use import from the
source tree and cannot tell a folder the list leaves out: dvdoctor.copies once was, and the
container image (`pip install .`) failed on every check that collects facts."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folder(package: str, package_dir: dict[str, str]) -> Path:
    """The source folder setuptools takes a package from (package-dir maps dvdoctor.checks to checks/)."""
    for prefix in sorted(package_dir, key=len, reverse=True):
        if package == prefix or package.startswith(prefix + "."):
            rest = package[len(prefix):].lstrip(".").split(".") if package != prefix else []
            return ROOT.joinpath(package_dir[prefix], *[p for p in rest if p])
    return ROOT.joinpath(*package.split("."))


def test_every_source_folder_with_files_is_a_declared_package():
    config = _config()
    declared = {_folder(p, config["package-dir"]) for p in config["packages"]}
    assert all(folder.is_dir() for folder in declared), sorted(str(f) for f in declared if not f.is_dir())
    holding_files = {path.parent for top in ("dvdoctor", "checks", "fixes") for path in (ROOT / top).rglob("*")
                     if path.is_file() and "__pycache__" not in path.parts}
    assert sorted(str(f.relative_to(ROOT)) for f in holding_files - declared) == []


def test_every_data_file_is_matched_by_the_package_data():
    """A folder of scripts, schemas or templates ships only the files its package-data globs match."""
    config = _config()
    for package, globs in config["package-data"].items():
        folder = _folder(package, config["package-dir"])
        files = {p for p in folder.iterdir() if p.is_file()}
        matched = {p for g in globs for p in folder.glob(g) if p.is_file()}
        assert sorted(p.name for p in files - matched if p.suffix != ".py") == [], package
