# Shared by the preload test scripts: a temporary directory removed at
# exit, and ok/bad reporting that sets the exit status.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
