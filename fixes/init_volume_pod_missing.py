"""For people who still run dvcli.sh: a repaired copy that takes DV's BAR image from the dv-init-volume Job.

dvdoctor's own backup and restore read the image from the Job, so they need no repair. dvcli.sh reads
it from the Job's pod, and once that pod is deleted it sets an empty image and its sed fails
(`extra characters at the end of d command`). With --dvcli PATH this writes PATH's stem +
`.dvdoctor.sh` beside the original, which is kept untouched: the image line reads the Job through
jsonpath (no grep for a hard-coded version), and every in-place sed uses `-i.dvdoctor-bak`, the
one spelling GNU and BSD sed both accept. Changes: one new local file; nothing on the cluster.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Sequence

from dvdoctor.core.errors import UsageError
from dvdoctor.facts.model import Facts
from dvdoctor.repair.fixer import FixOptions, fix
from dvdoctor.repair.plan import Plan, WriteLocalFile
from dvdoctor.verdicts.registry import Problem, module_id

ID = module_id(__name__)

IMAGE_LINE = re.compile(r"^(\s*)dv_init_volume_image=\$\(.*\bget\s+pod\b.*$", re.MULTILINE)
SED_IN_PLACE = re.compile(r"\bsed\s+-i(?:\s+''|\s+\"\")?(?=\s)")
JOB_LOOKUP = "get job {job} -o jsonpath='{{.spec.template.spec.containers[0].image}}'"
MARK = "# dvdoctor: from the job, whose pod may be gone"


def repaired_path(original: Path) -> Path:
    return original.with_name(f"{original.stem}.dvdoctor.sh")


def repair_text(text: str, job: str) -> str:
    """dvcli.sh's text with the image read from the Job and portable in-place seds."""
    # The workaround in the runbook feeds sed a whole `image: ...` line; keep whichever shape the script's sed expects.
    prefix = "image: " if re.search(r"s,image:\s", text) else ""

    def image_line(m: re.Match) -> str:
        lookup = f"$(oc ${{EXT_COMMANDS}} {JOB_LOOKUP.format(job=job)})"
        return f'{m.group(1)}dv_init_volume_image="{prefix}{lookup}"  {MARK}'

    text, found = IMAGE_LINE.subn(image_line, text)
    if not found and MARK not in text:
        raise UsageError("no line setting dv_init_volume_image from the init-volume pod was found: is this DV 1.5.0's dvcli.sh?")
    return SED_IN_PLACE.sub("sed -i.dvdoctor-bak", text)


def _options_path(options: FixOptions) -> Path:
    if options.dvcli is None:
        raise UsageError("--dvcli PATH is needed")
    return Path(options.dvcli)


def verify(options: FixOptions) -> tuple[bool, str]:
    target = repaired_path(_options_path(options))
    if not target.is_file():
        return False, f"{target} was not written"
    syntax = subprocess.run(["bash", "-n", str(target)], capture_output=True, text=True)
    if syntax.returncode != 0:
        return False, f"bash -n {target}: {syntax.stderr.strip()}"
    text = target.read_text(encoding="utf-8")
    ok = MARK in text and "get pod $dv_init_volume_pod" not in text
    return ok, f"{target}: bash -n passes, image read from the job" if ok else f"{target} still reads the pod"


@fix(verify=verify)
def plan(facts: Facts, problems: Sequence[Problem], options: FixOptions) -> Plan:
    # The problems are not read: what is repaired is a local copy of dvcli.sh, the same whatever the
    # check found (the job it reads the image from is DV's, by name), and it is proven by reading
    # that copy back (`verify`), not by the check, which the missing pod keeps failing.
    out = Plan()
    if options.dvcli is None:
        out.manual.append(
            "dvdoctor backup and dvdoctor restore take the image from the dv-init-volume job and are not affected. "
            f"If you run dvcli.sh yourself: dvdoctor fix --issue {ID} --dvcli ./dvcli.sh "
            "writes a repaired copy beside it."
        )
        return out
    original = Path(options.dvcli)
    if not original.is_file():
        raise UsageError(f"--dvcli {original}: no such file")
    fixed = repair_text(original.read_text(encoding="utf-8"), facts.names.init_volume_job)
    target = repaired_path(original)
    if target.is_file() and target.read_text(encoding="utf-8") == fixed:
        return out
    out.actions.append(WriteLocalFile(str(target), fixed, f"write {target} (a repaired copy; {original} is kept as it is)"))
    return out
