-- sqlite workload for scripts/bench, run as
--   (echo ".parameter set @rows 200000"; cat sqlite.sql) | sqlite3 :memory:
-- Models the database entries of allocator benchmarks (mimalloc-bench and
-- jemalloc run sqlite/redis-like stores): an in-memory table filled row by
-- row, two secondary indexes built, then aggregate queries, updates that
-- grow rows and deletes.  SQLite's page cache and parser objects come from
-- malloc.  Deterministic: no random() or randomblob().
PRAGMA cache_size = -262144;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL,
               note TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @rows)
INSERT INTO t
  SELECT x,
         printf('name-%08d-%x', (x * 7919) % @rows, (x * 2654435761) % 4294967296),
         x % 1000,
         ((x * 37) % 10007) / 7.0,
         substr('abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789',
                1 + x % 17, 10 + x % 50)
  FROM c;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp_val ON t(grp, val);
SELECT grp, count(*), round(avg(val), 3) FROM t GROUP BY grp
  ORDER BY 3 DESC, 1 LIMIT 3;
SELECT count(*) FROM t WHERE name BETWEEN 'name-00001000' AND 'name-00002000';
SELECT count(DISTINCT note), max(length(name)) FROM t;
UPDATE t SET note = note || '-' || name WHERE id % 5 = 0;
DELETE FROM t WHERE id % 7 = 0;
SELECT a.grp, count(*) FROM t AS a JOIN t AS b ON a.id = b.id + 1
  WHERE a.grp < 10 GROUP BY a.grp ORDER BY a.grp LIMIT 3;
SELECT count(*), sum(length(note)) FROM t;
