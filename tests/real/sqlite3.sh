#!/bin/bash
# real-sqlite3: the sqlite3 shell under fbmalloc.
#
# Proves that SQLite (which mallocs every parsed statement, prepared VM,
# page-cache entry and result row) gives byte-identical query results with
# and without LD_PRELOAD=libfbmalloc.so, and takes the fast path
# (fast_mallocs > 0, bad_frees == 0).  Workload: 200k single-row INSERT
# statements (each parsed, prepared and finalized) in one transaction into an
# on-disk database with two indexes, an UPDATE and a DELETE through the
# indexes, then aggregate queries (GROUP BY, window function, join,
# DISTINCT, string aggregation), integrity_check and a VACUUM.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

fb_need sqlite3 sqlite3

# 200k INSERTs generated once (by awk, not under the allocator).
awk 'BEGIN {
    x = 42
    print "CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, note TEXT);"
    print "BEGIN;"
    for (i = 1; i <= 200000; i++) {
        x = (x * 1103515245 + 12345) % 2147483648
        printf "INSERT INTO t VALUES (%d, %d, '\''n%05d'\'', %d.%02d, '\''%s'\'');\n", \
            i, x % 97, x % 30011, x % 100000, i % 100, substr("abcdefghijklmnopqrstuvwxyz", 1 + x % 26, 1 + i % 17)
    }
    print "CREATE INDEX t_grp ON t (grp, val);"
    print "CREATE INDEX t_name ON t (name);"
    print "COMMIT;"
}' >"$FB_IN/load.sql"

cat >"$FB_IN/query.sql" <<'EOF'
.headers on
.mode list
UPDATE t SET val = val * 2 WHERE grp = 13;
DELETE FROM t WHERE name BETWEEN 'n01000' AND 'n01999';
SELECT count(*), sum(grp), printf('%.2f', sum(val)), min(name), max(name), count(DISTINCT note) FROM t;
SELECT grp, count(*) AS n, printf('%.3f', avg(val)) AS a, min(id), max(id), length(group_concat(note, ''))
  FROM t GROUP BY grp ORDER BY n DESC, grp LIMIT 25;
SELECT name, count(*) AS c FROM t GROUP BY name HAVING c > 12 ORDER BY c DESC, name LIMIT 20;
SELECT id, grp, printf('%.2f', val), rk FROM (
  SELECT id, grp, val, rank() OVER (PARTITION BY grp ORDER BY val DESC, id) AS rk FROM t
) WHERE rk <= 2 ORDER BY grp, rk LIMIT 40;
SELECT a.grp, count(*) FROM t a JOIN t b ON a.name = b.name AND a.id < b.id
  WHERE a.grp < 4 GROUP BY a.grp ORDER BY a.grp;
SELECT substr(note, 1, 3) AS p, count(*), sum(length(note)) FROM t GROUP BY p ORDER BY p LIMIT 30;
SELECT length(s), substr(s, 1, 80), substr(s, -80) FROM (
  SELECT group_concat(id || ':' || name || ':' || val, ',') AS s FROM (SELECT * FROM t WHERE id % 100 = 7 ORDER BY id));
PRAGMA integrity_check;
VACUUM;
SELECT count(*) FROM t WHERE grp BETWEEN 10 AND 20 AND val > 50000;
EOF

workload() {
    fb sqlite3 -batch -bail db.sqlite <"$FB_IN/load.sql"
    fb sqlite3 -batch -bail db.sqlite <"$FB_IN/query.sql"
    fb sqlite3 -batch -bail db.sqlite .dump >dump.sql
    sha256sum dump.sql
}
FB_MIN_STATS=3
# Also under leak tracking and under checking + canaries (see common.sh).
FB_EXTRA_MODES=(leaks check)
fb_main
