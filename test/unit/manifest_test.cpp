// Unit tests of core/manifest: the manifest's JSON, part sizes, retries.
#include "core/manifest.hpp"

#include <gtest/gtest.h>

using namespace hb::core;

TEST(JsonString, EscapesWhatJsonRequires) {
    EXPECT_EQ(json_string("plain"), "\"plain\"");
    EXPECT_EQ(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(json_string("l1\nl2\t\x01"), "\"l1\\nl2\\t\\u0001\"");
    EXPECT_EQ(json_string("h\xc3\xa9"), "\"h\xc3\xa9\"");  // UTF-8 passes through
}

TEST(Manifest, HoldsEveryField) {
    Manifest m;
    m.parent = "public.heartbeats";
    m.partition = "hb_2026_11_02";
    m.range_start = "2026-11-02T00:00:00Z";
    m.range_end = "2026-11-03T00:00:00Z";
    m.columns = {{"device_id", "bigint"}, {"ts", "timestamp with time zone"}, {"status", "text"}};
    m.row_count = 172800;
    m.bytes = 9000000;
    m.compression = "gzip";
    m.files = {{"part-00000.csv.gz", 1234567, std::string(64, 'a')}};
    m.extension_version = "0.2";
    m.created_at = "2026-12-04T03:15:00Z";
    std::string j = manifest_json(m);
    for (const char *needle :
         {"\"partition\": \"hb_2026_11_02\"", "\"row_count\": 172800", "\"bytes\": 9000000",
          "{\"name\": \"ts\", \"type\": \"timestamp with time zone\"}",
          "{\"name\": \"part-00000.csv.gz\", \"bytes\": 1234567, \"sha256\": \"aaaa",
          "\"compression\": \"gzip\"", "\"extension_version\": \"0.2\"",
          "\"created_at\": \"2026-12-04T03:15:00Z\"\n}"})
        EXPECT_NE(j.find(needle), std::string::npos) << needle << "\n" << j;
}

TEST(PartSize, ClampedToS3Limits) {
    EXPECT_EQ(clamp_part_size(1), kMinPartBytes);
    EXPECT_EQ(clamp_part_size(16u << 20), 16u << 20);
    EXPECT_EQ(clamp_part_size(1ull << 40), kMaxPartBytes);
}

TEST(Retry, OnlyTransientAnswersAreRetried) {
    for (long s : {500L, 502L, 503L, 504L, 429L, 408L})
        EXPECT_TRUE(retryable_status(s)) << s;
    for (long s : {200L, 400L, 403L, 404L, 409L})
        EXPECT_FALSE(retryable_status(s)) << s;
}

TEST(Retry, BackoffGrowsAndIsCapped) {
    const std::uint32_t max = 0xffffffffu;
    EXPECT_NEAR(backoff_seconds(1, 0.5, 30, max), 0.5, 1e-6);
    EXPECT_NEAR(backoff_seconds(3, 0.5, 30, max), 2.0, 1e-6);
    EXPECT_NEAR(backoff_seconds(20, 0.5, 30, max), 30.0, 1e-6);
    EXPECT_EQ(backoff_seconds(5, 0.5, 30, 0), 0.0);
    EXPECT_LT(backoff_seconds(2, 0.5, 30, max / 2), 0.51);
}
