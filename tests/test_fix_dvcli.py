"""The repaired dvcli.sh copy: image from the Job via jsonpath, seds GNU accepts, original kept.

The input is a few lines of our own shaped like the runbook's quotes of dvcli.sh, not IBM's script.
"""

import os
import subprocess
from pathlib import Path

import pytest

import builders as b
from dvdoctor.core.errors import UsageError
from dvdoctor.repair.fixer import FixOptions, load_all
from fixes_support import minimal_facts

IMAGE = "image-registry.openshift-image-registry.svc:5000/cpd30/dv-init-volume:v1.5.0.0-217"
SCRIPT = """#!/usr/bin/env bash
EXT_COMMANDS="-n cpd30"
update_yaml(){
  local yaml_file=$1
  dv_init_volume_pod=$(oc ${EXT_COMMANDS} get pod | grep -i dv-init-volume | cut -d' ' -f1)
  dv_init_volume_image=$(oc ${EXT_COMMANDS} get pod $dv_init_volume_pod -o jsonpath="{.spec.containers[0].image}")
  sed -i '' "s,docker-registry.default.svc:5000/zen/dv-init-volume:v1.5.0.0,$dv_init_volume_image,g" $yaml_file
}
update_yaml "$1"
"""
FAKE_OC = f"""#!/usr/bin/env bash
# answers only what the repaired script may ask: the dv-init-volume job's image
case "$*" in
  *"get job dv-init-volume -o jsonpath="*) printf '%s' '{IMAGE}' ;;
  *) echo "unexpected oc call: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "dvcli.sh").write_text(SCRIPT)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "oc").write_text(FAKE_OC)
    (bin_dir / "oc").chmod(0o755)
    (tmp_path / "dv-backup-job.yaml").write_text("image: docker-registry.default.svc:5000/zen/dv-init-volume:v1.5.0.0\n")
    return tmp_path


def test_repaired_copy_reads_the_job_and_runs_with_gnu_sed(workdir):
    fx = load_all()["init-volume-pod-missing"]
    options = FixOptions(dvcli=workdir / "dvcli.sh")
    plan = b.fix_plan("init-volume-pod-missing", minimal_facts(), options)
    assert len(plan.actions) == 1
    plan.actions[0].apply(None)
    fixed = workdir / "dvcli.dvdoctor.sh"
    assert (workdir / "dvcli.sh").read_text() == SCRIPT  # original kept
    assert fx.verify(options)[0]
    env = {**os.environ, "PATH": f"{workdir / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(fixed), str(workdir / "dv-backup-job.yaml")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "dv-backup-job.yaml").read_text() == f"image: {IMAGE}\n"
    # a second run finds nothing to do
    assert b.fix_plan("init-volume-pod-missing", minimal_facts(), options).empty


def test_without_dvcli_it_only_explains(workdir):
    plan = b.fix_plan("init-volume-pod-missing", minimal_facts())
    assert plan.empty and "dvdoctor backup" in plan.manual[0]


def test_a_script_without_the_pod_lookup_is_refused(workdir):
    other = workdir / "other.sh"
    other.write_text("#!/bin/bash\necho hello\n")
    with pytest.raises(UsageError, match="dv_init_volume_image"):
        b.fix_plan("init-volume-pod-missing", minimal_facts(), FixOptions(dvcli=other))
