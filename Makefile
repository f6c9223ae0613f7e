# The two set-up commands of the README. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
NODE_MODULES := tests/interop/node_modules

.PHONY: demo test bench docs clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_MODULES)/.installed: tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed
	$(BIN)/wsevents serve

# Debian packages the suite needs on a fresh machine (Node for the npm peers, Chromium for the
# browser tests, redis-server for the scale-out tests, nginx for tests/test_howto_nginx.py,
# valgrind for benchmarks/icount.py and its smoke test).
# Installed with apt when missing and run as root; otherwise make stops at once with the exact
# command to run.
SYSTEM_DEPS := node:nodejs npm:npm chromium:chromium redis-server:redis-server nginx:nginx valgrind:valgrind

system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
	    cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	    command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" -ne 0 ]; then \
	        echo "missing Debian packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	    fi; \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; \
	fi

test: system-deps $(VENV)/.installed-dev $(NODE_MODULES)/.installed
	$(BIN)/ruff check src tests benchmarks samples docs
	$(BIN)/mypy
	$(BIN)/python -m pytest
	# The Autobahn case files run once, on the compiled path (the first run); the home-made
	# conformance suite in tests/conformance covers the pure path and uvloop.
	WSEVENTS_NO_SPEEDUPS=1 $(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/autobahn
	WSEVENTS_TEST_UVLOOP=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
	    tests/aio tests/integration tests/conformance tests/interop tests/cluster

$(VENV)/.installed-bench: $(VENV)/.installed benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

# Node's ws with bufferutil, the Node contender (benchmarks/node/server.js).
BENCH_NODE_MODULES := benchmarks/node/node_modules
$(BENCH_NODE_MODULES)/.installed: benchmarks/node/package.json benchmarks/node/package-lock.json
	cd benchmarks/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The compiled load generator (run.py also builds it on demand, and falls back to loadgen.py
# when there is no C compiler).
benchmarks/build/loadgen: benchmarks/loadgen.c
	mkdir -p benchmarks/build
	$(CC) -O2 -o $@ benchmarks/loadgen.c -lm

# Every contender, every scenario, both loops: under 10 minutes; writes benchmarks/RESULTS.md
# and the chart benchmarks/RESULTS.png. Then Autobahn's section 9 against wsevents and
# websockets; writes benchmarks/AUTOBAHN9.md.
bench: $(VENV)/.installed-bench $(BENCH_NODE_MODULES)/.installed benchmarks/build/loadgen
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/autobahn9.py

# The docs site into site/ (MkDocs, Material theme; mkdocs.yml): `.venv/bin/mkdocs serve` previews it.
# NO_MKDOCS_2_WARNING silences Material's banner announcing its end of life (May 2027).
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(NODE_MODULES) $(BENCH_NODE_MODULES) benchmarks/build build site src/*.egg-info
