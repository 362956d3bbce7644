// guard.hpp — the border between C++ and PostgreSQL, both directions.
//
// PostgreSQL reports errors with ereport(ERROR), which longjmps to the
// nearest PG_TRY or to the top-level error handler. A longjmp that crosses a
// C++ frame skips that frame's destructors; a C++ exception that crosses a C
// frame (the executor, fmgr) is undefined behaviour. Two guards keep the two
// mechanisms apart:
//
//  * hb::guarded(body) wraps every extern "C" entry point (SQL function,
//    trigger, hook, callback). Any std::exception escaping body becomes one
//    ereport(ERROR), raised only after every C++ object of body is gone.
//    A PgError (below) is re-raised as the original PostgreSQL error.
//
//  * hb::pg_call(f) wraps a call into PostgreSQL made while C++ objects with
//    destructors are alive. An ereport(ERROR) inside f is caught, copied,
//    and thrown as hb::PgError, so C++ unwinds normally and guarded() raises
//    the error again at the border.
//
// Code that only holds trivially destructible locals (palloc'd memory,
// StringInfo, plain structs) may call PostgreSQL directly inside guarded():
// a longjmp through such frames skips nothing.
//
// A PgError must always propagate to guarded(): the transaction is in an
// error state once PostgreSQL has raised, and only re-raising it lets the
// abort processing release locks, buffers and memory.
#pragma once

#include "pg.hpp"

#include <exception>
#include <type_traits>
#include <utility>

namespace hb {

// A PostgreSQL error caught by pg_call(), carried through C++ frames.
class PgError final : public std::exception {
public:
    explicit PgError(ErrorData *edata) noexcept : edata_(edata) {}
    const char *what() const noexcept override;
    ErrorData *edata() const noexcept { return edata_; }

private:
    ErrorData *edata_;  // palloc'd by CopyErrorData in the caller's context
};

namespace detail {

enum class Failure { none, postgres, out_of_memory, cxx, unknown };

// Raises the ERROR that stands for a caught failure. Never returns.
[[noreturn]] void raise_failure(Failure kind, ErrorData *edata, const char *what);

// Copies the current PostgreSQL error out of ErrorContext and clears it.
ErrorData *capture_error(MemoryContext into);

// The two guards, for a body returning nothing (the results are passed
// through captured references by the templates below).
template <typename F>
void run_guarded(F &&f) {
    Failure kind = Failure::none;
    ErrorData *edata = nullptr;
    char what[256];
    what[0] = '\0';
    try {
        f();
        return;
    } catch (const PgError &e) {
        kind = Failure::postgres;
        edata = e.edata();
    } catch (const std::bad_alloc &) {
        kind = Failure::out_of_memory;
    } catch (const std::exception &e) {
        kind = Failure::cxx;
        strlcpy(what, e.what(), sizeof what);
    } catch (...) {
        kind = Failure::unknown;
    }
    // Every C++ object of f, and the exception itself, is destroyed here.
    raise_failure(kind, edata, what);
}

template <typename F>
void run_pg_call(F &&f) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *volatile edata = nullptr;
    std::exception_ptr cxx_error;  // set only when no longjmp happened
    PG_TRY();
    {
        try {
            f();
        } catch (...) {
            cxx_error = std::current_exception();
        }
    }
    PG_CATCH();
    { edata = capture_error(caller_context); }
    PG_END_TRY();
    if (edata != nullptr)
        throw PgError(edata);
    if (cxx_error)
        std::rethrow_exception(cxx_error);
}

}  // namespace detail

// Runs body at an extern "C" border; see the file comment. body returns the
// value the entry point returns (Datum, or void).
template <typename Body>
auto guarded(Body &&body) -> decltype(body()) {
    using Result = decltype(body());
    if constexpr (std::is_void_v<Result>) {
        detail::run_guarded([&] { body(); });
    } else {
        Result result{};
        detail::run_guarded([&] { result = body(); });
        return result;
    }
}

// Runs f, which calls into PostgreSQL, while C++ objects are alive; see the
// file comment. Returns what f returns. A C++ exception thrown by f is
// caught inside the PG_TRY block and thrown again after it, so that
// PostgreSQL's error stack is always restored.
template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
    using Result = decltype(f());
    if constexpr (std::is_void_v<Result>) {
        detail::run_pg_call([&] { f(); });
    } else {
        static_assert(std::is_scalar_v<Result>,
                      "pg_call returns PostgreSQL values (Datum, pointers, scalars)");
        Result result{};
        detail::run_pg_call([&] { result = f(); });
        return result;
    }
}

}  // namespace hb
