#!/usr/bin/env bash
# Redraw docs/module-graph.png, the picture of the module graph that docs/layout.md shows, from the
# code as it stands. It needs `farm-studio` (the design tool of this workplace, not a dependency of
# aecodec): `farm-studio look` measures the imports afresh and writes its picture under
# /tmp/studio; its first line is JSON naming that picture. Run it after moving or adding modules.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v farm-studio >/dev/null || { echo "module_graph.sh: farm-studio is not installed" >&2; exit 1; }
picture=$(farm-studio look | head -n 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["picture"])')
cp "$picture" docs/module-graph.png
echo "docs/module-graph.png <- $picture"
