// guard.cpp — the out-of-line halves of the guards in guard.hpp.
#include "guard.hpp"

namespace hb {

const char *PgError::what() const noexcept {
    if (edata_ != nullptr && edata_->message != nullptr)
        return edata_->message;
    return "PostgreSQL error";
}

namespace detail {

ErrorData *capture_error(MemoryContext into) {
    // CopyErrorData refuses to run in ErrorContext; the copy must outlive
    // FlushErrorState, which resets ErrorContext.
    MemoryContextSwitchTo(into);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    return edata;
}

void raise_failure(Failure kind, ErrorData *edata, const char *what) {
    if (kind == Failure::postgres && edata != nullptr)
        ReThrowError(edata);
    if (kind == Failure::out_of_memory)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
                        errdetail("A C++ allocation in hb_lifecycle failed.")));
    const char *message = kind == Failure::cxx ? what : "unknown C++ exception";
    ereport(ERROR,
            (errcode(ERRCODE_INTERNAL_ERROR), errmsg("hb_lifecycle internal error: %s", message),
             errhint("This is a bug in hb_lifecycle; please report it with the "
                     "statement that raised it.")));
    pg_unreachable();
}

}  // namespace detail
}  // namespace hb
