# fairseq-signlang: `make demo` runs the main job end to end, `make test` runs the tests.
# Both create the virtual environment (.venv, Python 3.11) when it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

.PHONY: setup test demo demo-units demo-tools bench clean

setup: $(STAMP)

# fairseq-fixed is built with --no-build-isolation so pip does not pull a second (CUDA) torch
# just to compile it; its build needs torch, numpy, cython, setuptools and wheel in place first.
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip "setuptools<81" wheel
	$(PIP) install torch==$(TORCH_VERSION) numpy cython
	$(PIP) install --no-build-isolation "fairseq-fixed==0.12.3.1"
	$(PIP) install --no-build-isolation -e ".[test,pose]"
	touch $(STAMP)

# The tests run the main job (make demo) too, so they need what it needs. They run in two
# processes (pytest-xdist), a test file each at a time, with one torch thread per process and per
# training it starts: two single-threaded processes use the two cores of the CI machine without
# torch's threads waiting on each other.
TEST_WORKERS ?= 2
test: $(STAMP) demo-tools
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -rs --durations=15 -n $(TEST_WORKERS) --dist loadfile tests

# The demo's English text is the King James Bible from Debian's bible-kjv (public domain); its
# speech comes from Debian's flite and espeak-ng. Installed here when missing.
DEMO_TOOLS := bible:bible-kjv flite:flite espeak-ng:espeak-ng

demo-tools:
	@missing=""; for t in $(DEMO_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages for the demo:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

demo: $(STAMP) demo-tools
	$(PY) scripts/demo_media.py --out outputs/demo

# The quicker demo on simulated unit corpora (no audio or video): about 3 minutes, for a quick look.
demo-units: $(STAMP) demo-tools
	$(PY) scripts/demo_word.py --out outputs/demo_units

# The retrieval benchmark times dtaidistance beside the project's DTW: the `bench` extra, installed
# here when missing.
bench: $(STAMP)
	$(PY) -c "import dtaidistance" 2>/dev/null || $(PIP) install --no-build-isolation -e ".[bench]"
	$(PY) scripts/bench_retrieval.py

clean:
	rm -rf $(VENV) outputs
