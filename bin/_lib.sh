# Shared helpers for the bin/ scripts. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN="$ROOT/.run"
CACHE="${HOGSEND_CACHE:-$HOME/.cache/hogsend}"
PG_PORT="${HOGSEND_PG_PORT:-54329}"
REDIS_PORT="${HOGSEND_REDIS_PORT:-63799}"
VENV="$ROOT/.venv"
mkdir -p "$RUN" "$CACHE"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Run a command as the postgres superuser when we are root (PostgreSQL refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  echo "${dir:-$(dirname "$(command -v pg_ctl)")}"
}
