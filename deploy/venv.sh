# Sourced by deploy/up and deploy/test: create .venv with Python 3.11 and install the project (pinned
# dependencies, with the test extra and the dev extra: the embedded broker, database and mail catcher)
# when it is missing or pyproject.toml changed since the last install.
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "Recovery Network needs Python 3.11 (found: $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..." >&2
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.installed-pyproject
if [ ! -f "$STAMP" ] || ! cmp -s pyproject.toml "$STAMP"; then
  echo "Installing dependencies into .venv (first run takes a minute or two) ..." >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]' >&2
  cp pyproject.toml "$STAMP"
fi
