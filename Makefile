# farmhand — `make run` starts a local farm, `make test` runs the whole suite.
# Both work on a fresh machine: they create .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# Blender 4.2 as a Python module (requirements-bpy.txt) for the add-on's test on Blender 4.x:
# its wheels are for CPython 3.11 only, so it gets its own venv from a 3.11 interpreter.
BPY_VENV   := .venv-bpy
BPY_PYTHON ?= $(shell command -v python3.11 || echo $(PYTHON))
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: demo run test check lint format bench clean sysdeps venv bpy-venv vendor blender-addon

run: $(VENV)/.run-deps
	@PY=$(PY) bash scripts/run-local.sh

# A farm to pour from without hardware: master, dashboard, a simulated Kegboard (two taps, a
# fridge thermometer), an RFID reader and two workers, seeded; it prints what to type and click.
demo: $(VENV)/.run-deps
	$(PY) -m farmhand.demo

test: $(VENV)/.dev-deps $(BPY_VENV)/.installed sysdeps lint
	$(PY) -m pytest -q

# Lint, types and the fast in-process core tests (fake clock, fake peers, no sockets, no
# sleeps): the check to run before every commit. `make test` runs everything.
check: lint
	$(PY) -m pytest -q -p no:cacheprovider -m fast tests/unit

lint: $(VENV)/.dev-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(VENV)/.dev-deps
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(VENV)/.dev-deps
	$(PY) bench/clients_io.py
	$(PY) bench/agents.py
	$(PY) bench/crowd.py
	$(PY) bench/dispatch.py
	$(PY) bench/ingest.py
	$(PY) bench/dashboard.py

# Refresh the dashboard's front-end libraries from the npm registry (pinned in the script).
vendor:
	bash dashboard/vendor.sh

venv: $(VENV)/.dev-deps

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	touch $(VENV)/.run-deps $@

# Made once (the stamp), again only when requirements-bpy.txt changes.
bpy-venv: $(BPY_VENV)/.installed

$(BPY_VENV)/.installed: requirements-bpy.txt
	$(BPY_PYTHON) -m venv $(BPY_VENV)
	$(BPY_VENV)/bin/python -m pip --disable-pip-version-check -q install -r requirements-bpy.txt
	touch $@

# The Blender add-on's zip (contrib/blender/, with farmhand.client vendored): install it through
# Blender's Preferences > Add-ons > Install.
blender-addon:
	$(PYTHON) scripts/build_blender_addon.py dist/farmhand_blender.zip

# Installs the Debian packages the suite drives for real, only when one is missing: the telnet
# client, a PostgreSQL server, chromium for the dashboard's browser tests, blender and ffmpeg for
# the real renders (tests/e2e/test_blender.py; xvfb for the add-on panel drawn in Blender's
# window), and the Mosquitto MQTT broker the MQTT bridge's
# tests start on a free port (never as a system service on 1883).
sysdeps:
	@missing=""; \
	command -v telnet >/dev/null 2>&1 || missing="$$missing telnet"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v blender >/dev/null 2>&1 || missing="$$missing blender"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v xvfb-run >/dev/null 2>&1 || missing="$$missing xvfb xauth"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) $(BPY_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
