#!/usr/bin/env bash
# Makes this folder's own Python environment (.venv) with kvpress 0.5.5 pinned. Run by hand,
# never in CI: torch alone is a large download.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install --upgrade pip
"$here/.venv/bin/pip" install -r "$here/requirements.txt"
echo "ready: $here/.venv/bin/python"
