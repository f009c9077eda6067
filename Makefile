# vidfleet: `make run` processes the bundled samples; `make test` runs the whole suite.
# Both set up .venv themselves from the pinned lock (no network beyond the package registries).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vidfleet-installed
SERVICES := services/common services/capture services/detector services/coordinator
export YOLO_CONFIG_DIR ?= $(CURDIR)/.cache/ultralytics
export YOLO_OFFLINE ?= 1

.PHONY: venv tools run test lock bench clean

venv: $(STAMP)

$(STAMP): requirements/dev.lock $(addsuffix /pyproject.toml,$(SERVICES))
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "vidfleet needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(addprefix -e ,$(SERVICES))
	$(BIN)/python tools/check_env.py
	touch $@

run: venv
	$(BIN)/vidfleet process samples --model vidfleet-shapes-n.pt --visualize --out results/samples

# The deployment tests need promtool/prometheus (Debian package) and kubectl with Kustomize v4+.
tools:
	@command -v promtool >/dev/null || { echo "installing prometheus + promtool (apt-get)"; \
	  apt-get install -y --no-install-recommends prometheus >/dev/null || \
	  { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }; }

test: venv tools
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_fleet.py
	$(BIN)/python bench/bench_capture.py
	$(BIN)/python bench/bench_live.py

lock: venv
	{ head -2 requirements/dev.lock; $(BIN)/pip freeze --all --exclude-editable | grep -v -E "^(vidfleet|pip==)"; } > requirements/dev.lock.new
	mv requirements/dev.lock.new requirements/dev.lock

clean:
	rm -rf $(VENV) results .pytest_cache
