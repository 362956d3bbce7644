// latest_buffer.hpp — the per-statement "newest heartbeat per device" buffer.
//
// Pure C++ (no postgres.h), owned by one backend, never shared between
// threads. The AFTER ROW trigger offers every inserted heartbeat; the buffer
// keeps, per (target table, device key), only the row with the greatest time.
// The AFTER STATEMENT trigger drains it in lock order (target, then key bytes)
// and applies one write per device.
//
// Rows are kept in layers, one per subtransaction level that offered them, so
// that a ROLLBACK TO SAVEPOINT (or an error caught by a PL/pgSQL EXCEPTION
// block) drops exactly the rows its subtransaction offered and nothing the
// outer levels offered. A committed subtransaction's rows join its parent's
// layer. Levels are PostgreSQL SubTransactionIds: they grow, and a level that
// is open is greater than every level opened before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hb::core {

// Where a heartbeat row lives (relation oid and TID) and its time.
struct RowRef {
    std::uint32_t rel = 0;
    std::uint32_t block = 0;
    std::uint16_t offset = 0;
    std::int64_t ts = 0;  // microseconds, PostgreSQL TimestampTz
};

// One row handed out by drain_top(). key points into the caller's arena.
struct DrainedRow {
    std::uint32_t target = 0;
    const char *key = nullptr;
    std::uint32_t key_len = 0;
    RowRef ref;
};

class LatestBuffer {
public:
    struct Extent {
        std::size_t rows = 0;
        std::size_t key_bytes = 0;
    };

    // Offers a row seen in subtransaction `level`. Keeps it if it is newer
    // than what the newest layer already holds for (target, key); an equal
    // or older time never replaces a kept row. May throw std::bad_alloc.
    void offer(std::uint32_t target, std::uint32_t level, std::string_view key, const RowRef &ref);

    // Subtransaction `level` committed into `parent`: its rows now belong to
    // the parent level (they are merged with it, newest wins, when drained).
    void subxact_commit(std::uint32_t level, std::uint32_t parent) noexcept;

    // Subtransaction `level` aborted: drop what it and its children offered.
    void subxact_abort(std::uint32_t level) noexcept;

    void clear() noexcept { layers_.clear(); }
    bool empty() const noexcept { return layers_.empty(); }

    // Level of the newest layer (0 when empty) and an upper bound of what
    // draining that level yields.
    std::uint32_t top_level() const noexcept { return layers_.empty() ? 0 : layers_.back().level; }
    Extent top_extent() const noexcept;

    // Moves the rows of the newest level into out[] (room for
    // top_extent().rows entries) with their keys copied into arena
    // (top_extent().key_bytes bytes), one row per (target, key), sorted by
    // (target, key bytes), and removes that level's layers. Returns the
    // number of rows written. Never allocates.
    std::size_t drain_top(DrainedRow *out, char *arena) noexcept;

private:
    struct Key {
        std::uint32_t target;
        std::string bytes;
        bool operator==(const Key &o) const noexcept {
            return target == o.target && bytes == o.bytes;
        }
    };
    struct KeyHash {
        std::size_t operator()(const Key &k) const noexcept;
    };
    struct Layer {
        std::uint32_t level = 0;
        std::size_t key_bytes = 0;
        std::unordered_map<Key, RowRef, KeyHash> rows;
    };

    std::vector<Layer> layers_;
    Key probe_{0, {}};
};

}  // namespace hb::core
