# hb_lifecycle — PGXS build of the extension (C++17).
#
#   make                 build hb_lifecycle.so and the SQL script
#   make install         install into the server found by pg_config
#   make installcheck    pg_regress (sql/), isolation specs (test/isolation)
#                        and TAP tests (test/tap) against a running server
#
# The pure C++ parts and their unit tests are built by CMakeLists.txt.

EXTENSION   = hb_lifecycle
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" hb_lifecycle.control)
MODULE_big  = hb_lifecycle
OBJS        = src/hb_lifecycle.o src/guard.o src/guc.o src/shmem.o src/spi_env.o \
              src/sync_config.o src/dedupe.o src/last_status_trigger.o \
              src/last_status_writer.o src/manage.o src/partitions.o src/selftest.o \
              src/worker.o src/archive.o src/read_path.o \
              src/core/key_codec.o src/core/latest_buffer.o src/core/partition_scheme.o \
              src/core/tid_cache.o src/core/archive_stream.o src/core/archive_target.o \
              src/core/archive_writer.o src/core/manifest.o src/core/s3_client.o src/core/webhook.o

# SQL objects, one per file, concatenated in name order.
SQL_SOURCES = $(sort $(wildcard src/sql/*.sql))
# The update from 0.2: what 0.3 changed in 0.2's tables, its new objects,
# and its changed functions (made again with CREATE OR REPLACE).
UPDATE_0_2_NEW      = src/sql/14_hb_jobs.sql src/sql/60_hb_settings.sql
UPDATE_0_2_REPLACED = src/sql/69__hb_sync_partitions.sql src/sql/69b__hb_ensure_catchall.sql \
                      src/sql/70__hb_create_slot.sql src/sql/74_hb_drop_partition.sql \
                      src/sql/77_hb_run_maintenance.sql src/sql/81__hb_lifecycle_functions.sql
UPDATE_0_2_ADDED    = src/sql/69a__hb_partition_triggers.sql src/sql/83__hb_jobs_api.sql \
                      src/sql/83b__hb_archivable.sql \
                      src/sql/84_hb_archive_partition.sql src/sql/85__hb_archive_steps.sql \
                      src/sql/86_hb_restore_partition.sql src/sql/86b__hb_ls_columns.sql \
                      src/sql/86c__hb_lock_device_changes.sql \
                      src/sql/87_hb_reconcile.sql \
                      src/sql/88__hb_backfill_steps.sql src/sql/89_hb_backfill_last_status.sql \
                      src/sql/90_hb_read_path.sql
UPDATE_0_2_SOURCES  = src/sql/00_header.sql src/sql/updates/0.2--0.3-tables.sql $(UPDATE_0_2_NEW) \
                      $(UPDATE_0_2_REPLACED) $(UPDATE_0_2_ADDED) src/sql/updates/0.2--0.3-grants.sql
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--0.2--0.3.sql
# Install scripts of released versions, frozen.
DATA        = $(wildcard src/sql/releases/$(EXTENSION)--*.sql)

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql
ISOLATION      = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso
TAP_TESTS   = 1
PROVE_TESTS = $(sort $(wildcard test/tap/*.pl))

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wno-register -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers $(if $(WERROR),-Werror)
SHLIB_LINK += -lstdc++ -lcurl -lcrypto -lz -lpthread

EXTRA_CLEAN = $(DATA_built) output_iso results regression.diffs regression.out tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
# JIT inlining of our functions brings nothing (they are triggers and SPI
# callers); skip the LLVM bitcode that Debian's PGXS would build.
override with_llvm = no
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) hb_lifecycle.control
	cat $(SQL_SOURCES) > $@

$(EXTENSION)--0.2--0.3.sql: $(UPDATE_0_2_SOURCES)
	{ cat src/sql/00_header.sql src/sql/updates/0.2--0.3-tables.sql $(UPDATE_0_2_NEW); \
	  sed 's/^CREATE FUNCTION /CREATE OR REPLACE FUNCTION /' $(UPDATE_0_2_REPLACED); \
	  cat $(UPDATE_0_2_ADDED) src/sql/updates/0.2--0.3-grants.sql; } > $@

$(OBJS): $(wildcard src/*.hpp src/core/*.hpp)
