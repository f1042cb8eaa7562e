# Shared by the preload test scripts: a temporary directory removed at
# exit, and ok/bad reporting that sets the exit status.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# same_output_under NAME VAR=VALUE...: python3 (json, sqlite3 module) and,
# if installed, sqlite3 must print exactly what they print without the
# library, with nothing on stderr, under the library with these options.
same_output_under() {
    local name=$1; shift
    local script='import json,sqlite3
d = {str(i): [i] * (i % 7) for i in range(20000)}
s = json.dumps(d); d2 = json.loads(s)
db = sqlite3.connect(":memory:")
db.execute("create table t(a, b)")
db.executemany("insert into t values (?, ?)", ((i, str(i) * 3) for i in range(20000)))
print(len(s), len(d2), db.execute("select count(*), sum(a) from t").fetchone())'
    local want got
    want=$(/usr/bin/python3 -c "$script")
    got=$(env "$@" LD_PRELOAD="$FBMALLOC_LIB" /usr/bin/python3 -c "$script" 2>"$tmp/err")
    [[ "$got" == "$want" && ! -s "$tmp/err" ]] && ok "python3 under $name: identical output" \
        || bad "python3 under $name: '$got' vs '$want' $(head -5 "$tmp/err")"
    command -v sqlite3 >/dev/null || return 0
    local sql="create table t(a integer primary key, b text); with recursive c(x) as (select 1 union all select x+1 from c where x < 50000) insert into t select x, hex(randomblob(20)) from c; create index ib on t(b); select count(*), sum(length(b)) from t;"
    want=$(sqlite3 :memory: "$sql")
    got=$(env "$@" LD_PRELOAD="$FBMALLOC_LIB" sqlite3 :memory: "$sql" 2>"$tmp/err")
    [[ "$got" == "$want" && ! -s "$tmp/err" ]] && ok "sqlite3 under $name: identical output" \
        || bad "sqlite3 under $name: '$got' vs '$want' $(head -5 "$tmp/err")"
}
