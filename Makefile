# The first two targets are the README's first two commands.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEMO    ?= demo_out
DEMO_ARGS ?=

.PHONY: demo test lint bench clean

demo: $(STAMP)
	$(BIN)/python -m app.demo --out $(DEMO) $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check app ml tests bench

clean:
	rm -rf $(DEMO) build dist

# The PyInstaller bundle dist/boxes2pixels/ (build.spec) and its smoke test (packaging/smoke.sh).
.PHONY: package package-test

package: $(STAMP)
	$(BIN)/pip install -q -e '.[package]'
	@start=$$(date +%s); \
	$(BIN)/pyinstaller --noconfirm --log-level WARN build.spec || exit 1; \
	echo "package: dist/boxes2pixels built in $$(( $$(date +%s) - start )) s," \
	     "size $$(du -sh dist/boxes2pixels | cut -f1)"

package-test:
	bash packaging/smoke.sh
