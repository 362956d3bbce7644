-- The C++/PostgreSQL error border, both directions (src/guard.hpp).
CREATE EXTENSION hb_lifecycle;
CREATE FUNCTION hb_selftest_throw(text) RETURNS text
    AS 'hb_lifecycle', 'hb_selftest_throw' LANGUAGE C STRICT;
CREATE FUNCTION hb_selftest_pg_error() RETURNS int
    AS 'hb_lifecycle', 'hb_selftest_pg_error' LANGUAGE C;
CREATE FUNCTION hb_selftest_pg_error_detailed() RETURNS int
    AS 'hb_lifecycle', 'hb_selftest_pg_error_detailed' LANGUAGE C;
CREATE FUNCTION hb_selftest_destructions(OUT destroyed int, OUT alive int)
    AS 'hb_lifecycle', 'hb_selftest_destructions' LANGUAGE C;

-- The SQLSTATE and message a statement fails with.
CREATE FUNCTION failure_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- No exception: the function returns normally.
SELECT hb_selftest_throw('none');

-- A C++ exception becomes one clean ERROR with a hint ...
SELECT hb_selftest_throw('runtime_error');
-- ... of SQLSTATE internal_error; std::bad_alloc becomes out_of_memory;
-- anything else thrown is still caught.
SELECT failure_of($$SELECT hb_selftest_throw('runtime_error')$$);
SELECT failure_of($$SELECT hb_selftest_throw('bad_alloc')$$);
SELECT failure_of($$SELECT hb_selftest_throw('int')$$);
-- An exception thrown inside pg_call() (with PG_TRY active) too; after it,
-- PostgreSQL's own errors are reported as usual.
SELECT failure_of($$SELECT hb_selftest_throw('in_pg_call')$$);
SELECT 1 / 0;

-- The session goes on after each of them.
SELECT 1 AS still_connected;

-- Inside a transaction the ERROR aborts it like any other, and ROLLBACK
-- recovers it.
BEGIN;
SELECT hb_selftest_throw('runtime_error');
SELECT 1;
ROLLBACK;
SELECT 2 AS after_rollback;

-- The C++ objects of all seven calls above were destroyed (3 per call).
SELECT destroyed, alive FROM hb_selftest_destructions();

-- A PostgreSQL ERROR raised inside pg_call() while C++ objects are alive
-- reaches the client with its own message and SQLSTATE ...
SELECT hb_selftest_pg_error();
SELECT failure_of('SELECT hb_selftest_pg_error()');
-- ... after the three objects alive at each call were destroyed.
SELECT destroyed, alive FROM hb_selftest_destructions();

-- Its DETAIL and HINT survive the trip too.
SELECT hb_selftest_pg_error_detailed();
SELECT failure_of('SELECT hb_selftest_pg_error_detailed()');
SELECT destroyed, alive FROM hb_selftest_destructions();

-- An EXCEPTION block catches it like any PostgreSQL error.
DO $$
BEGIN
    PERFORM hb_selftest_pg_error();
EXCEPTION WHEN division_by_zero THEN
    RAISE NOTICE 'caught % in PL/pgSQL', SQLSTATE;
END $$;
SELECT destroyed, alive FROM hb_selftest_destructions();

DROP EXTENSION hb_lifecycle;
