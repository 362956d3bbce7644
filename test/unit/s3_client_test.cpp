// Unit tests of the pure helpers of core/s3_client (the client itself is
// tested against a real S3 server by test/s3/run.sh).
#include "core/s3_client.hpp"

#include <gtest/gtest.h>

using namespace hb::core;

TEST(UriEncode, KeepsUnreservedAndOptionallySlashes) {
    EXPECT_EQ(uri_encode("public.heartbeats/hb_2026_11_02/part-00000.csv.gz", true),
              "public.heartbeats/hb_2026_11_02/part-00000.csv.gz");
    EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
    EXPECT_EQ(uri_encode("a b+c=d~e", false), "a%20b%2Bc%3Dd~e");
    EXPECT_EQ(uri_encode("\xc3\xa9", false), "%C3%A9");
}

TEST(XmlValue, FindsATagsText) {
    const char *xml =
        "<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>abc-123</UploadId>"
        "</InitiateMultipartUploadResult>";
    EXPECT_EQ(xml_value(xml, "UploadId"), "abc-123");
    EXPECT_EQ(xml_value(xml, "Bucket"), "b");
    EXPECT_EQ(xml_value(xml, "Missing"), "");
    EXPECT_EQ(xml_value("<Code>Unclosed", "Code"), "");
}
