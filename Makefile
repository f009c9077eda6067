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

.PHONY: venv tools run test lock bench clean images chart-lint deploy dev

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
	$(BIN)/python bench/bench_s3.py
	$(BIN)/python bench/bench_capture.py
	$(BIN)/python bench/bench_live.py

lock: venv
	{ head -2 requirements/dev.lock; $(BIN)/pip freeze --all --exclude-editable | grep -v -E "^(vidfleet|pip==)"; } > requirements/dev.lock.new
	mv requirements/dev.lock.new requirements/dev.lock
	$(BIN)/python tools/image_locks.py

# Deployment: images (needs a Docker engine), offline checks, helm install, the skaffold dev loop.
REGISTRY ?= vidfleet
TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/vidfleet/Chart.yaml)
IMAGES := capture detector coordinator
RELEASE ?= vidfleet
NAMESPACE ?= vidfleet
VALUES ?= charts/vidfleet/values.yaml
SKAFFOLD_PROFILE ?= cpu

images:
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine reachable (docker info failed); start Docker or build elsewhere"; exit 1; }
	for svc in $(IMAGES); do docker build -f services/$$svc/Dockerfile -t $(REGISTRY)/$$svc:$(TAG) . || exit 1; done

chart-lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/hadolint --no-color --failure-threshold warning services/*/Dockerfile
	$(BIN)/python -m pytest tests/deploy -q

deploy:
	@command -v helm >/dev/null || { echo "make deploy: no helm binary on PATH (https://helm.sh/docs/intro/install/)"; exit 1; }
	helm upgrade --install $(RELEASE) charts/vidfleet --namespace $(NAMESPACE) --create-namespace -f $(VALUES)

dev:
	@command -v skaffold >/dev/null || { echo "make dev: no skaffold binary on PATH (https://skaffold.dev/docs/install/)"; exit 1; }
	skaffold dev $(if $(SKAFFOLD_PROFILE),-p $(SKAFFOLD_PROFILE))

clean:
	rm -rf $(VENV) results .pytest_cache
