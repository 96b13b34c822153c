#!/bin/sh
# recommendations' build step: its own virtual environment (.venv) with the pinned
# requirements, installed again only when requirements.txt changes.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! cmp -s requirements.txt .venv/requirements.installed; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/requirements.installed
fi
