# fairseq-signlang: `make demo` runs the main job end to end, `make test` runs the tests.
# Both create the virtual environment (.venv, Python 3.11) when it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

.PHONY: setup test demo bench clean

setup: $(STAMP)

# fairseq-fixed is built with --no-build-isolation so pip does not pull a second (CUDA) torch
# just to compile it; its build needs torch, numpy, cython, setuptools and wheel in place first.
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools<81" wheel
	$(PIP) install torch==$(TORCH_VERSION) numpy cython
	$(PIP) install --no-build-isolation "fairseq-fixed==0.12.3.1"
	$(PIP) install --no-build-isolation -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# The demo's English text: the King James Bible from Debian's bible-kjv (public domain).
demo: $(STAMP)
	@command -v bible >/dev/null 2>&1 || { echo "installing Debian's bible-kjv (the demo's English sentences)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bible-kjv; }
	$(PY) scripts/demo_word.py --out outputs/demo

bench: $(STAMP)
	$(PY) scripts/bench_retrieval.py

clean:
	rm -rf $(VENV) outputs
