"""`dvdoctor --help` and lab runs never import the kubernetes client (its cost is measured in
benchmarks/startup.py; here only the fact is asserted, not a time)."""

import subprocess
import sys

CODE = """
import sys
from dvdoctor.cli import run
code = run(sys.argv[1:])
print("kubernetes" in sys.modules, code)
"""


def loaded_kubernetes(*args: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True, check=True).stdout
    flag, code = out.strip().splitlines()[-1].split()
    return flag == "True", int(code)


def test_help_does_not_import_the_kubernetes_client():
    assert loaded_kubernetes("--help") == (False, 0)
    assert loaded_kubernetes("check", "--help") == (False, 0)


def test_listing_checks_does_not_import_it_either():
    assert loaded_kubernetes("checks", "-o", "json") == (False, 0)
