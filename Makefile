# The two commands of the README:
#   make quickstart   set up .venv, train and test TransPose on synthetic data
#   make test         set up .venv, run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv quickstart test clean

# Re-installs when a requirements file or setup.py changes.
$(STAMP): requirements/base.txt requirements/openmmlab.txt requirements/tests.txt requirements/deploy.txt setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements/base.txt -r requirements/tests.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements/openmmlab.txt
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

quickstart:
	@start=$$(date +%s); $(MAKE) --no-print-directory venv && \
	QUICKSTART_START=$$start $(VENV)/bin/python tools/quickstart.py

test: venv
	$(VENV)/bin/python -m pytest tests

clean:
	rm -rf $(VENV) work_dirs data/synthetic
