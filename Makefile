# The two commands of the README:
#   make quickstart   set up .venv, train and test TransPose on synthetic data
#   make test         set up .venv, run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv quickstart lint test clean

# Re-installs when a requirements file or setup.py changes.
$(STAMP): requirements/base.txt requirements/openmmlab.txt requirements/tests.txt requirements/deploy.txt setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements/base.txt -r requirements/tests.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements/openmmlab.txt
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# The quickstart's time counts from when make starts, before the venv is set
# up (a target-specific := is expanded while the Makefile is read). No recipe
# line holds $(MAKE): make -n would run such a line instead of printing it.
quickstart: QUICKSTART_START := $(shell date +%s)
quickstart: venv
	QUICKSTART_START=$(QUICKSTART_START) $(VENV)/bin/python tools/quickstart.py

# OpenMMLab's style (setup.cfg, as MMPose's): what pre-commit checks.
STYLED := sspose_mm tools tests configs setup.py
lint: venv
	$(VENV)/bin/python -m flake8 $(STYLED)
	$(VENV)/bin/python -m isort --check-only --diff $(STYLED)
	$(VENV)/bin/python -m yapf --diff --recursive --exclude 'tests/data/*' $(STYLED)

test: lint
	$(VENV)/bin/python -m pytest tests

clean:
	rm -rf $(VENV) work_dirs data/synthetic
