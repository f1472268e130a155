# The README's two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint bench models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch first, from the CPU build, so the project does not pull a multi-GB CUDA build.
install: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .

install-test: install
	$(BIN)/pip install -e '.[test]'

run: install
	$(BIN)/python main.py

test: install-test
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest
	$(BIN)/ruff check .
	$(BIN)/lint-imports

lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The packaged installers (dist/installer/: .deb and .tar.gz), built and checked offline.
# installer/README.md has the Windows and macOS steps.
.PHONY: installer installer-smoke
installer: install
	$(BIN)/pip install 'pyinstaller>=6.11'
	PYTHON=$(abspath $(BIN)/python) installer/build_linux.sh

installer-smoke: installer
	SKIP_BUILD=1 installer/smoke_test.sh
