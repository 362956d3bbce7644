// Unit tests of core/tid_cache: a bounded hint from device key to TID.
#include "core/tid_cache.hpp"

#include <gtest/gtest.h>

#include <string>

using hb::core::TidCache;

TEST(TidCache, PacksBlockAndOffset) {
    const std::uint64_t tid = TidCache::pack(0xfffffffeu, 291);
    EXPECT_EQ(TidCache::block_of(tid), 0xfffffffeu);
    EXPECT_EQ(TidCache::offset_of(tid), 291);
}

TEST(TidCache, RemembersWhatWasPut) {
    TidCache cache(10);
    std::uint64_t tid = 0;
    EXPECT_FALSE(cache.find("dev-1", &tid));
    cache.put("dev-1", TidCache::pack(7, 3));
    ASSERT_TRUE(cache.find("dev-1", &tid));
    EXPECT_EQ(tid, TidCache::pack(7, 3));
}

TEST(TidCache, PutReplacesTheOldTid) {
    TidCache cache(10);
    cache.put("k", 1);
    cache.put("k", 2);
    std::uint64_t tid = 0;
    ASSERT_TRUE(cache.find("k", &tid));
    EXPECT_EQ(tid, 2u);
    EXPECT_EQ(cache.size(), 1u);
}

TEST(TidCache, ForgetRemovesOneKey) {
    TidCache cache(10);
    cache.put("a", 1);
    cache.put("b", 2);
    cache.forget("a");
    std::uint64_t tid = 0;
    EXPECT_FALSE(cache.find("a", &tid));
    EXPECT_TRUE(cache.find("b", &tid));
}

TEST(TidCache, StartsOverWhenFull) {
    TidCache cache(3);
    for (int i = 0; i < 3; ++i)
        cache.put(std::to_string(i), static_cast<std::uint64_t>(i));
    EXPECT_EQ(cache.size(), 3u);
    cache.put("new", 9);
    EXPECT_EQ(cache.size(), 1u);
    std::uint64_t tid = 0;
    EXPECT_TRUE(cache.find("new", &tid));
    EXPECT_FALSE(cache.find("0", &tid));
}

TEST(TidCache, KeysAreBytesNotCStrings) {
    TidCache cache(10);
    const std::string with_nul("a\0b", 3);
    cache.put(with_nul, 5);
    std::uint64_t tid = 0;
    EXPECT_FALSE(cache.find("a", &tid));
    ASSERT_TRUE(cache.find(with_nul, &tid));
    EXPECT_EQ(tid, 5u);
}
