"""DV's BAR job templates are missing from dv-engine-0.

Symptom: dvcli.sh fails to copy its YAML files out of dv-engine-0, and dvdoctor's backup, restore
and list, which build their jobs from the same templates, cannot start.
Cause: DV's backup, restore, list and PVC templates (`dv-backup-job.yaml`, `dv-restore-job.yaml`,
`dv-bar-pvc.yaml`, `dv-list-backups-job.yaml`) ship in dv-engine-0 under
/opt/dv/current/bar/yaml. When one is absent or empty, the image is not DV 1.5.0's or the pod's
files were altered.
Repair: manual: check which image dv-engine-0 runs (`oc get pod dv-engine-0
-o jsonpath='{.spec.containers[*].image}'`); restart dv-engine-0 so its files come from the image
again; if they are still missing, this DV is not 1.5.0 and its BAR needs that release's procedure.
"""

from dvdoctor.facts.model import SECTION_ENGINE, Facts
from dvdoctor.verdicts.registry import Problem, check


@check(
    "DV's BAR job templates are in dv-engine-0",
    needs=[SECTION_ENGINE],
    tags=["engine", "templates"],
)
def run(facts: Facts):
    names, engine = facts.names, facts.engine
    empty = [n for n, text in engine["templates"].items() if not text.strip()]
    absent = [n for n in names.templates if n in engine["missing_templates"]]
    if not absent and not empty:
        return
    evidence = [f"{names.engine_pod}:{names.template_dir}/{n}: no such file" for n in absent]
    evidence += [f"{names.engine_pod}:{names.template_dir}/{n}: empty" for n in empty]
    found = sorted(n for n in engine["templates"] if n not in empty)
    evidence.append(f"present: {', '.join(found) or 'none'}")
    yield Problem(f"{len(absent) + len(empty)} of DV's BAR templates {'is' if len(absent) + len(empty) == 1 else 'are'} missing or empty in {names.template_dir}",
                  tuple(evidence), f"pod/{names.engine_pod}")
