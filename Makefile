# bidroom: two commands do it all.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEBS := fonts-wqy-zenhei poppler-utils age libnss3-tools qpdf nodejs chromium
FONT := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc

.PHONY: run test venv deps system-deps npm clean audit

$(VENV)/bin/activate:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools

venv: $(VENV)/bin/activate

# Debian packages for the CJK font, pdfsig/pdffonts/pdftoppm, qpdf (record structure checks), the age CLI, Node's npm
# (the pages' browser libraries) and Chromium (the browser tests); installed only when missing and root.
system-deps:
	@missing=""; \
	for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing Debian packages:$$missing (install them as root)"; fi; \
	fi

deps: venv
	$(PIP) install -q -e .

# The pages' browser libraries (package.json, pinned by package-lock.json) into node_modules, served by the app
# from /static/vendor; again only when the lockfile changed. No install scripts run.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

npm: system-deps node_modules/.package-lock.json

run: deps system-deps npm
	$(VENV)/bin/bidroom serve --demo --port 8080

# pytest-xdist workers; tests/conftest.py puts the browser, media and server end-to-end tests on one worker each.
# Bytecode is written for this run even where PYTHONDONTWRITEBYTECODE is set: each worker and every server or CLI
# process the tests start then loads the compiled modules, and pytest its rewritten test modules, from the cache.
TEST_WORKERS ?= 4

test: venv system-deps npm
	$(PIP) install -q -e '.[test]'
	$(MAKE) audit
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

# known vulnerabilities in the installed dependencies (pip-audit); waivers and the offline case: docs/SECURITY.md
audit: venv
	$(PIP) install -q -e '.[test]'
	$(PY) -m tests.security.pip_audit_gate

clean:
	rm -rf $(VENV) var .pytest_cache node_modules
