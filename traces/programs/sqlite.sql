-- A table of 20,000 rows built by a recursive query, an index, an aggregate and an update.
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, payload TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO t SELECT i, 'name' || i, i % 97, substr(replace(printf('%040d', i * 7919), '0', 'ab'), 1, i % 120) FROM n;
CREATE INDEX t_grp ON t(grp, name);
SELECT grp, count(*), max(length(payload)) FROM t GROUP BY grp ORDER BY 2 DESC LIMIT 5;
UPDATE t SET payload = payload || payload WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(payload)) FROM t;
