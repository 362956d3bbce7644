// selftest.cpp — SQL-callable probes of the C++/PostgreSQL error border.
//
// Not part of the extension's SQL surface: the regression tests create
// these functions themselves (AS 'hb_lifecycle', 'hb_selftest_...') to
// prove both directions of guard.hpp on a real server:
//   hb_selftest_throw(kind)      a C++ exception becomes one clean ERROR,
//                                also one thrown inside pg_call();
//   hb_selftest_pg_error()       an ERROR raised by PostgreSQL inside
//                                pg_call() unwinds C++ objects (their
//                                destructors run) and reaches the client
//                                unchanged;
//   hb_selftest_pg_error_detailed()  the same with a DETAIL and a HINT,
//                                which survive the trip;
//   hb_selftest_destructions()   how many of those objects were destroyed,
//                                and how many are still alive.
#include "pg.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
}

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "guard.hpp"

namespace {

int alive = 0;
int destroyed = 0;

// An object with a destructor that must run when an error unwinds past it.
class Tracked {
public:
    Tracked() : payload_(1024, 'x') { ++alive; }
    ~Tracked() {
        --alive;
        ++destroyed;
    }
    Tracked(const Tracked &) = delete;
    Tracked &operator=(const Tracked &) = delete;

private:
    std::string payload_;
};

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(hb_selftest_throw);
PG_FUNCTION_INFO_V1(hb_selftest_pg_error);
PG_FUNCTION_INFO_V1(hb_selftest_pg_error_detailed);
PG_FUNCTION_INFO_V1(hb_selftest_destructions);
}

extern "C" Datum hb_selftest_throw(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        std::string kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
        std::vector<Tracked> objects(3);
        if (kind == "runtime_error")
            throw std::runtime_error("selftest: std::runtime_error thrown in C++");
        if (kind == "bad_alloc")
            throw std::bad_alloc();
        if (kind == "int")
            throw 42;
        if (kind == "in_pg_call")
            // Thrown while PG_TRY is active: pg_call must restore
            // PostgreSQL's error stack before letting it go on.
            hb::pg_call([] { throw std::runtime_error("selftest: thrown inside pg_call"); });
        return hb::pg_call([] { return PointerGetDatum(cstring_to_text("no exception")); });
    });
}

extern "C" Datum hb_selftest_pg_error(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        auto first = std::make_unique<Tracked>();
        std::vector<Tracked> more(2);
        // int4div raises division_by_zero with ereport(ERROR).
        Datum q = hb::pg_call(
            [] { return DirectFunctionCall2(int4div, Int32GetDatum(1), Int32GetDatum(0)); });
        PG_RETURN_DATUM(q);
    });
}

extern "C" Datum hb_selftest_pg_error_detailed(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        std::vector<Tracked> objects(3);
        hb::pg_call([] {
            ereport(ERROR,
                    (errcode(ERRCODE_CHECK_VIOLATION), errmsg("selftest: raised inside pg_call"),
                     errdetail("The detail of the selftest error."),
                     errhint("The hint of the selftest error.")));
        });
        PG_RETURN_NULL();
    });
}

extern "C" Datum hb_selftest_destructions(PG_FUNCTION_ARGS) {
    return hb::guarded([&]() -> Datum {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("hb_selftest_destructions() must return a record")));
        desc = BlessTupleDesc(desc);
        Datum values[2] = {Int32GetDatum(destroyed), Int32GetDatum(alive)};
        bool nulls[2] = {false, false};
        return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
}
