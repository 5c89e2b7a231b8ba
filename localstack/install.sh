#!/usr/bin/env bash
# Install LocalStack 4.13.1 (S3, host mode, no Docker) into its own virtualenv,
# <repo>/.venvs/localstack, apart from the project's: its pins clash with
# current client libraries. Does nothing when a working install is there;
# replaces a broken one.
#
#   localstack/install.sh            # uses python3.11 (or python3 >= 3.11)
#   PYTHON=/path/to/python3.11 localstack/install.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${REFSTORE_LOCALSTACK_VENV:-$(dirname "$here")/.venvs/localstack}"
version="4.13.1"
# Newer LocalStack releases need Python 3.12; 4.13.1 runs on 3.11 with these
# pins (see EMULATORS.md).
packages=(
    "localstack-core[base-runtime]==$version"
    "cbor2<6"
    "pyopenssl<26"
    "cryptography<47"
    "service_identity"
)

installed() {
    "$venv/bin/python" - "$version" >/dev/null 2>&1 <<'PY'
import sys
import localstack.runtime.main  # noqa: F401
import localstack.version
sys.exit(localstack.version.__version__ != sys.argv[1])
PY
}

pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$candidate"
            return
        fi
    done
    echo "install.sh: no Python 3.11 or newer found; set PYTHON=/path/to/python3.11" >&2
    exit 1
}

if installed; then
    echo "LocalStack $version is installed in $venv"
    exit 0
fi

python="$(pick_python)"
echo "Installing LocalStack $version into $venv with $python ..."
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${packages[@]}"

if ! installed; then
    echo "install.sh: LocalStack was installed into $venv but does not import" >&2
    exit 1
fi
echo "done"
