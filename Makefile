# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each creates the virtualenv (.venv) and installs dvdoctor with its test extras if needed.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench bench-copies clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(VENV)/bin/dvdoctor demo

test: $(STAMP)
	scripts/test-tools.sh
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/startup.py
	$(VENV)/bin/python benchmarks/requests.py

bench-copies: $(STAMP)
	scripts/test-tools.sh
	$(VENV)/bin/python benchmarks/copies.py

clean:
	rm -rf $(VENV) build *.egg-info
