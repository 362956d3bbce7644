// Unit tests of core/latest_buffer: newest-per-device, lock order, and the
// subtransaction layering that decides which rows survive a rollback.
#include "core/latest_buffer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/key_codec.hpp"

using hb::core::DrainedRow;
using hb::core::LatestBuffer;
using hb::core::RowRef;

namespace {

constexpr std::uint32_t kTop = 1;  // PostgreSQL's TopSubTransactionId

RowRef at(std::int64_t ts, std::uint32_t block = 0) {
    RowRef r;
    r.rel = 16384;
    r.block = block;
    r.offset = 1;
    r.ts = ts;
    return r;
}

std::string dev(std::int64_t id) {
    std::string k;
    hb::core::encode_int(id, k);
    return k;
}

struct Drained {
    std::uint32_t target;
    std::string key;
    std::int64_t ts;
    std::uint32_t block;
};

std::vector<Drained> drain(LatestBuffer &buf) {
    const auto extent = buf.top_extent();
    std::vector<DrainedRow> rows(extent.rows);
    std::vector<char> arena(extent.key_bytes + 1);
    const std::size_t n = buf.drain_top(rows.data(), arena.data());
    std::vector<Drained> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back({rows[i].target, std::string(rows[i].key, rows[i].key_len), rows[i].ref.ts,
                       rows[i].ref.block});
    return out;
}

}  // namespace

TEST(LatestBuffer, KeepsTheNewestRowOfADevice) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(7), at(100, 1));
    buf.offer(1, kTop, dev(7), at(300, 3));
    buf.offer(1, kTop, dev(7), at(200, 2));
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].ts, 300);
    EXPECT_EQ(rows[0].block, 3u);
}

TEST(LatestBuffer, EqualTimeNeverReplacesTheKeptRow) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(7), at(100, 1));
    buf.offer(1, kTop, dev(7), at(100, 2));
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].block, 1u);
}

TEST(LatestBuffer, DrainsInTargetThenKeyOrder) {
    LatestBuffer buf;
    for (std::int64_t id : {5, -3, 1000, 0, 42})
        buf.offer(2, kTop, dev(id), at(id));
    buf.offer(1, kTop, dev(9), at(1));
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 6u);
    EXPECT_EQ(rows[0].target, 1u);
    std::vector<std::int64_t> ids;
    for (std::size_t i = 1; i < rows.size(); ++i)
        ids.push_back(hb::core::decode_int(rows[i].key));
    EXPECT_EQ(ids, (std::vector<std::int64_t>{-3, 0, 5, 42, 1000}));
}

TEST(LatestBuffer, SameKeyOfTwoTargetsIsTwoRows) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(7), at(100));
    buf.offer(2, kTop, dev(7), at(50));
    EXPECT_EQ(drain(buf).size(), 2u);
}

TEST(LatestBuffer, DrainEmptiesTheLevel) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(1));
    EXPECT_EQ(drain(buf).size(), 1u);
    EXPECT_TRUE(buf.empty());
    EXPECT_EQ(buf.top_extent().rows, 0u);
}

TEST(LatestBuffer, AbortedSubtransactionDropsOnlyItsRows) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(100));
    buf.offer(1, 2, dev(1), at(500));  // newer, but in a subtransaction
    buf.offer(1, 2, dev(2), at(500));
    buf.subxact_abort(2);
    ASSERT_EQ(buf.top_level(), kTop);
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].ts, 100);
}

TEST(LatestBuffer, AbortDropsNestedChildrenToo) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(1));
    buf.offer(1, 2, dev(2), at(2));
    buf.offer(1, 3, dev(3), at(3));
    buf.subxact_abort(2);
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(hb::core::decode_int(rows[0].key), 1);
}

TEST(LatestBuffer, CommittedSubtransactionJoinsItsParent) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(100));
    buf.offer(1, 2, dev(1), at(500));
    buf.offer(1, 2, dev(2), at(50));
    buf.subxact_commit(2, kTop);
    EXPECT_EQ(buf.top_level(), kTop);
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 2u);  // one row per device, merged
    EXPECT_EQ(hb::core::decode_int(rows[0].key), 1);
    EXPECT_EQ(rows[0].ts, 500);
    EXPECT_EQ(rows[1].ts, 50);
}

TEST(LatestBuffer, OlderRowOfACommittedChildDoesNotWin) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(900));
    buf.offer(1, 2, dev(1), at(100));
    buf.subxact_commit(2, kTop);
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].ts, 900);
}

TEST(LatestBuffer, ChildCommittedThenParentAborted) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(1));
    buf.offer(1, 3, dev(2), at(2));
    buf.subxact_commit(3, 2);  // level 3 into level 2 ...
    buf.subxact_abort(2);      // ... which then rolls back
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(hb::core::decode_int(rows[0].key), 1);
}

TEST(LatestBuffer, DrainTakesOnlyTheNewestLevel) {
    LatestBuffer buf;
    buf.offer(1, kTop, dev(1), at(1));
    buf.offer(1, 2, dev(2), at(2));
    const auto inner = drain(buf);
    ASSERT_EQ(inner.size(), 1u);
    EXPECT_EQ(hb::core::decode_int(inner[0].key), 2);
    EXPECT_EQ(buf.top_level(), kTop);
    EXPECT_EQ(drain(buf).size(), 1u);
}

TEST(LatestBuffer, LongKeysAreCopiedIntoTheArena) {
    LatestBuffer buf;
    const std::string long_key(200, 'k');
    buf.offer(1, kTop, long_key, at(1));
    buf.offer(1, kTop, "short", at(2));
    const auto rows = drain(buf);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].key, long_key);
    EXPECT_EQ(rows[1].key, "short");
}
