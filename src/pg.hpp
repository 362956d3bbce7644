// pg.hpp — the PostgreSQL headers, included the one way C++ may include them.
//
// Every translation unit that talks to PostgreSQL includes this file first.
// The headers are C: they are wrapped in extern "C" so their symbols link,
// and they must come before any C++ standard header that could drag in a
// conflicting macro (PostgreSQL redefines a few libc names on some systems).
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}
