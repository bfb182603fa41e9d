#!/usr/bin/env bash
# Installs the server vector store omnibind's PostgreSQL tests use (`omnibind index DIR --store postgresql://...`):
# PostgreSQL 15 from Debian, and pgvector 0.8.0 built from Debian's own source package of the next release
# (trixie), which bookworm does not package. A private apt configuration adds only trixie's deb-src index, so
# the system's apt sources and lists are left as they were; the source builds against postgresql-server-dev-15
# in seconds. Idempotent: an installed pgvector 0.8.0 is left alone. Runs apt only as root on a Debian-like
# system; elsewhere it prints what to install and exits 0 (the PostgreSQL tests then skip, saying why).
set -euo pipefail
PG=15
PGVECTOR=0.8.0
SOURCE_SUITE=trixie
MIRROR=http://deb.debian.org/debian
PG_CONFIG=/usr/lib/postgresql/$PG/bin/pg_config
CONTROL=/usr/share/postgresql/$PG/extension/vector.control
PACKAGES=("postgresql-$PG" "postgresql-server-dev-$PG" build-essential dpkg-dev)

installed() {
  [ -f "$CONTROL" ] && [ -f "/usr/lib/postgresql/$PG/lib/vector.so" ] &&
    grep -q "default_version = '$PGVECTOR'" "$CONTROL"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && installed; then
  echo "omnibind: PostgreSQL $PG and pgvector $PGVECTOR are installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "omnibind: skipping PostgreSQL $PG + pgvector $PGVECTOR (needs root and apt); the PostgreSQL tests will skip." >&2
  echo "  To install by hand: apt-get install postgresql-$PG postgresql-server-dev-$PG build-essential dpkg-dev," >&2
  echo "  then build pgvector $PGVECTOR (https://github.com/pgvector/pgvector) with make && make install." >&2
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "omnibind: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
installed && { echo "omnibind: pgvector $PGVECTOR is installed"; exit 0; }

# A throwaway apt state that knows only trixie's source index: nothing is added to /etc/apt or /var/lib/apt.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt's unprivileged _apt user downloads into it
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/sources.list.d" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SOURCE_SUITE main" \
  >"$work/sources.list"
APT=(apt-get -qq -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/sources.list.d"
     -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
echo "omnibind: fetching Debian's pgvector $PGVECTOR source package ($SOURCE_SUITE)"
"${APT[@]}" update
version=$(apt-cache -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/sources.list.d" \
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" showsrc pgvector |
          sed -n "s/^Version: \($PGVECTOR-.*\)/\1/p" | head -n 1)
if [ -z "$version" ]; then
  echo "omnibind: $SOURCE_SUITE has no pgvector $PGVECTOR source package; install pgvector $PGVECTOR by hand" >&2
  exit 1
fi
(cd "$work/src" && "${APT[@]}" source --only-source "pgvector=$version" >/dev/null)
echo "omnibind: building pgvector $version against postgresql-server-dev-$PG"
make -s -C "$work/src/pgvector-$PGVECTOR" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s -C "$work/src/pgvector-$PGVECTOR" PG_CONFIG="$PG_CONFIG" install >/dev/null
installed || { echo "omnibind: pgvector $PGVECTOR did not install into $CONTROL" >&2; exit 1; }
echo "omnibind: pgvector $PGVECTOR is installed"
