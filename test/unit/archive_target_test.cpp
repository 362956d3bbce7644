// Unit tests of core/archive_target: archive URLs, object names, AWS
// credentials files.
#include "core/archive_target.hpp"

#include <gtest/gtest.h>

using namespace hb::core;

TEST(ArchiveUrl, FileUrlGivesTheDirectory) {
    std::string err;
    auto t = parse_archive_url("file:///var/lib/postgresql/15/main/hb_archive/", &err);
    ASSERT_TRUE(t) << err;
    EXPECT_EQ(t->kind, ArchiveTarget::Kind::File);
    EXPECT_EQ(t->dir, "/var/lib/postgresql/15/main/hb_archive");
}

TEST(ArchiveUrl, FileUrlMustBeAbsoluteAndPlain) {
    std::string err;
    EXPECT_FALSE(parse_archive_url("file://relative/dir", &err));
    EXPECT_NE(err.find("absolute"), std::string::npos);
    EXPECT_FALSE(parse_archive_url("file:///a/../etc", &err));
    EXPECT_FALSE(parse_archive_url("file:///a/..", &err));
}

TEST(ArchiveUrl, S3UrlGivesBucketAndPrefix) {
    std::string err;
    auto t = parse_archive_url("s3://fleet-archive/hb/prod/", &err);
    ASSERT_TRUE(t) << err;
    EXPECT_EQ(t->kind, ArchiveTarget::Kind::S3);
    EXPECT_EQ(t->bucket, "fleet-archive");
    EXPECT_EQ(t->prefix, "hb/prod");
    auto bare = parse_archive_url("s3://fleet-archive", &err);
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->prefix, "");
}

TEST(ArchiveUrl, BadBucketsAndPrefixesAreRefused) {
    std::string err;
    EXPECT_FALSE(parse_archive_url("s3://Fleet/x", &err));
    EXPECT_FALSE(parse_archive_url("s3://ab/x", &err));
    EXPECT_FALSE(parse_archive_url("s3://bucket/with space", &err));
    EXPECT_FALSE(parse_archive_url("s3://bucket//lead", &err));
    EXPECT_FALSE(parse_archive_url("http://bucket/x", &err));
    EXPECT_NE(err.find("file:///dir or s3://bucket/prefix"), std::string::npos);
}

TEST(ArchiveUrl, ErrorsNeverQuoteTheUrl) {
    std::string err;
    EXPECT_FALSE(parse_archive_url("s3://AKIASECRET:hunter2@bucket/x", &err));
    EXPECT_EQ(err.find("hunter2"), std::string::npos);
    EXPECT_EQ(err.find("AKIASECRET"), std::string::npos);
}

TEST(ObjectPath, LaysOutParentPartitionFile) {
    std::string err;
    auto s3 = parse_archive_url("s3://fleet-archive/hb", &err);
    EXPECT_EQ(object_path(*s3, "public.heartbeats", "hb_2026_11_02", "manifest.json"),
              "hb/public.heartbeats/hb_2026_11_02/manifest.json");
    EXPECT_EQ(object_url(*s3, "hb/public.heartbeats/hb_2026_11_02/manifest.json"),
              "s3://fleet-archive/hb/public.heartbeats/hb_2026_11_02/manifest.json");
    auto bare = parse_archive_url("s3://fleet-archive", &err);
    EXPECT_EQ(object_path(*bare, "p", "q", "f"), "p/q/f");
    auto file = parse_archive_url("file:///srv/a", &err);
    EXPECT_EQ(object_path(*file, "p", "q", part_name(0, true)), "/srv/a/p/q/part-00000.csv.gz");
    EXPECT_EQ(object_url(*file, "/srv/a/p/q/x"), "file:///srv/a/p/q/x");
}

TEST(ObjectPath, PartNames) {
    EXPECT_EQ(part_name(0, true), "part-00000.csv.gz");
    EXPECT_EQ(part_name(42, false), "part-00042.csv");
}

TEST(ObjectName, OnlyPlainNames) {
    EXPECT_TRUE(valid_object_name("hb_2026_11_02"));
    EXPECT_TRUE(valid_object_name("public.heartbeats"));
    EXPECT_FALSE(valid_object_name(""));
    EXPECT_FALSE(valid_object_name("../etc"));
    EXPECT_FALSE(valid_object_name("a/b"));
    EXPECT_FALSE(valid_object_name(".hidden"));
    EXPECT_FALSE(valid_object_name(std::string(64, 'a')));
}

TEST(AwsCredentials, ReadsTheProfile) {
    const char *text =
        "# comment\n"
        "[other]\naws_access_key_id = OTHER\naws_secret_access_key = nope\n"
        "[default]\r\n"
        "aws_access_key_id=AKIDEXAMPLE\r\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \n"
        "; another comment\n"
        "aws_session_token = token123\n";
    std::string err;
    auto c = parse_aws_credentials(text, "default", &err);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->access_key_id, "AKIDEXAMPLE");
    EXPECT_EQ(c->secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    EXPECT_EQ(c->session_token, "token123");
    auto o = parse_aws_credentials(text, "other", &err);
    ASSERT_TRUE(o);
    EXPECT_EQ(o->access_key_id, "OTHER");
    EXPECT_EQ(o->session_token, "");
}

TEST(AwsCredentials, MissingPiecesAreNamedNotShown) {
    std::string err;
    EXPECT_FALSE(
        parse_aws_credentials("[default]\naws_access_key_id = AKIDSHOWNOT\n", "default", &err));
    EXPECT_NE(err.find("aws_secret_access_key"), std::string::npos);
    EXPECT_EQ(err.find("AKIDSHOWNOT"), std::string::npos);
    EXPECT_FALSE(parse_aws_credentials("[x]\naws_access_key_id = a\n", "default", &err));
    EXPECT_NE(err.find("no [default] profile"), std::string::npos);
}
