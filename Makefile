# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each creates the virtualenv (.venv) and installs dvdoctor with its test extras if needed.
# The interpreter the virtualenv is made from: Debian's /usr/bin/python3 where it can make one (its
# python3-venv package gives it ensurepip), else python3 from PATH. Debian builds it with PGO and LTO
# and libpython linked in; the interpreter first on PATH here (pyenv's 3.11.7) is built without them
# and starts a process in 27 ms instead of 8: the suite, which starts a few hundred Python processes
# beside its workers, costs about 8 CPU-seconds (5%) less under Debian's (benchmarks/suite_cpu.py).
PYTHON ?= $(shell /usr/bin/python3 -c 'import ensurepip, sys; assert sys.version_info >= (3, 10)' 2>/dev/null \
                  && echo /usr/bin/python3 || echo python3)
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-real kube-real bench bench-suite bench-copies clean

# setuptools warns on every editable install that a folder named like the package (dvdoctor/, here the
# source itself) wins imports run from this folder: known and intended, so make demo shows only the demo.
# --clear: a .venv made by another interpreter (before the Makefile chose Debian's) is made anew, not
# half-converted (venv over another Python's venv fails in ensurepip and leaves it broken).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(VENV)/bin/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(VENV)/bin/dvdoctor demo

# The real tier (tests/real) runs against Kubernetes 1.20 built from Debian's source package: built
# once into .cache/kube (about 5 minutes on 2 cores) where that can work (root on Debian 12),
# and required there: a missing build then fails the run instead of skipping the tier.
KUBE_REAL = bash scripts/kube-real.sh

kube-real:
	@if why=$$($(KUBE_REAL) can-build); then $(KUBE_REAL) build; \
	else echo "real tier: no control plane here ($$why); tests/real will be skipped"; fi

# The suite runs in parallel (pytest-xdist): a test waits on a lab job, a child process, a fake API
# server or the real one, so TEST_WORKERS tests at a time keep 2 cores busy (session 15: 8: 86-97 s,
# 6: 89 s, 7: 93 s; session 14, one run each: 8: 104 s, 6: 105 s, 10: 104 s; 4: 127 s in session 13;
# on 2 cores). worksteal: an idle worker takes tests from a busy one's queue (durations range
# from milliseconds to seconds). The real tier goes to 3 of the 8 (tests/real/conftest.py says why).
# compileall: the tests start dvdoctor as a child process a few hundred times; with its bytecode
# written once they need not compile it each time (PYTHONDONTWRITEBYTECODE=1 keeps Python from
# writing it on its own). The collect-only pass does the same for the test modules as pytest
# rewrites their asserts: each of the workers would otherwise rewrite and compile all of them
# again (about 2.7 CPU-seconds a worker; PYTHONDONTWRITEBYTECODE stops pytest writing them too).
# Its outcome is not checked (`-`): a module that fails to import is reported by the run itself.
TEST_WORKERS ?= 8

test: $(STAMP) kube-real
	scripts/test-tools.sh
	$(VENV)/bin/python -m compileall -q dvdoctor checks fixes tests >/dev/null
	@echo "collecting the tests once (pytest writes their rewritten bytecode for the workers)"
	-env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/pytest -q -p no:cacheprovider --collect-only >/dev/null 2>&1
	@if $(KUBE_REAL) can-build >/dev/null; then export DVDOCTOR_REAL_REQUIRED=1; fi; \
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

# Only the real tier (builds the control plane first when needed).
test-real: $(STAMP) kube-real
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal tests/real

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/startup.py
	$(VENV)/bin/python benchmarks/requests.py

# The suite's CPU by program, by test file and by test (root: cpuacct cgroups and process accounting; an idle machine).
bench-suite: $(STAMP) kube-real
	scripts/test-tools.sh
	$(VENV)/bin/python benchmarks/suite_cpu.py --by-file

bench-copies: $(STAMP)
	scripts/test-tools.sh
	$(VENV)/bin/python benchmarks/copies.py

clean:
	rm -rf $(VENV) build *.egg-info
