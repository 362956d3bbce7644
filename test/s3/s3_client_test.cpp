// core/s3_client against a real S3 API server that checks SigV4 signatures
// (moto_server, started by test/s3/run.sh, which passes HB_S3_ENDPOINT,
// HB_S3_ACCESS_KEY_ID and HB_S3_SECRET_ACCESS_KEY of a user it created).
#include "core/archive_stream.hpp"
#include "core/archive_writer.hpp"
#include "core/manifest.hpp"
#include "core/s3_client.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace hb::core;

namespace {

std::string env(const char *name) {
    const char *v = std::getenv(name);
    if (v == nullptr) {
        ADD_FAILURE() << name << " is not set: run test/s3/run.sh";
        return "";
    }
    return v;
}

S3Config config() {
    S3Config c;
    c.endpoint = env("HB_S3_ENDPOINT");
    c.credentials.access_key_id = env("HB_S3_ACCESS_KEY_ID");
    c.credentials.secret_access_key = env("HB_S3_SECRET_ACCESS_KEY");
    c.max_attempts = 2;
    c.backoff_base_s = 0.01;
    return c;
}

std::string fetch(S3Client &s3, const std::string &bucket, const std::string &key, S3Result *r) {
    std::string got;
    *r = s3.get_object(bucket, key, [&](const char *p, std::size_t n) { got.append(p, n); });
    return got;
}

class S3 : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        S3Client s3(config());
        S3Result r = s3.create_bucket("hb-archive-test");
        ASSERT_TRUE(r.ok() || r.status == 409) << r.error;
    }
    const std::string bucket = "hb-archive-test";
};

}  // namespace

TEST_F(S3, SignedPutHeadGetDelete) {
    S3Client s3(config());
    std::string body = "device_id,ts,status\n1,2026-11-02 10:00:00+00,ok\n";
    S3Result put = s3.put_object(bucket, "public.heartbeats/hb_2026_11_02/part-00000.csv", body);
    ASSERT_TRUE(put.ok()) << put.error;
    EXPECT_EQ(put.status, 200);
    EXPECT_FALSE(put.etag.empty());
    S3Result head = s3.head_object(bucket, "public.heartbeats/hb_2026_11_02/part-00000.csv");
    ASSERT_TRUE(head.ok()) << head.error;
    EXPECT_EQ(head.content_length, body.size());
    S3Result get;
    EXPECT_EQ(fetch(s3, bucket, "public.heartbeats/hb_2026_11_02/part-00000.csv", &get), body);
    ASSERT_TRUE(get.ok()) << get.error;
    EXPECT_TRUE(s3.delete_object(bucket, "public.heartbeats/hb_2026_11_02/part-00000.csv").ok());
    S3Result gone = s3.head_object(bucket, "public.heartbeats/hb_2026_11_02/part-00000.csv");
    EXPECT_EQ(gone.status, 404);
    EXPECT_FALSE(gone.ok());
}

TEST_F(S3, ServerSideEncryptionIsRequested) {
    S3Client s3(config());
    S3Result put = s3.put_object(bucket, "sse/object", "x");
    ASSERT_TRUE(put.ok()) << put.error;
    EXPECT_EQ(put.sse, "AES256");
}

TEST_F(S3, KeysThatNeedEncodingAreRefusedBeforeAnyRequest) {
    S3Client s3(config());
    S3Result put = s3.put_object(bucket, "odd dir/a+b=c.csv", "odd");
    EXPECT_FALSE(put.ok());
    EXPECT_EQ(put.attempts, 0);
    EXPECT_NE(put.error.find("object keys may hold"), std::string::npos) << put.error;
}

TEST_F(S3, ArchiveKeysAreSignedRight) {
    S3Client s3(config());
    const std::string key = "hb/public.heartbeats/hb_2026_11_02/part-00000.csv.gz";
    ASSERT_TRUE(s3.put_object(bucket, key, "gz").ok());
    S3Result get;
    EXPECT_EQ(fetch(s3, bucket, key, &get), "gz");
}

TEST_F(S3, MultipartUploadOfTwoParts) {
    S3Client s3(config());
    std::string upload_id;
    S3Result create = s3.create_multipart(bucket, "mp/part-00000.csv.gz", &upload_id);
    ASSERT_TRUE(create.ok()) << create.error;
    ASSERT_FALSE(upload_id.empty());
    std::string first(kMinPartBytes, 'a'), second = "the rest";
    S3Result p1 = s3.upload_part(bucket, "mp/part-00000.csv.gz", upload_id, 1, first);
    ASSERT_TRUE(p1.ok()) << p1.error;
    S3Result p2 = s3.upload_part(bucket, "mp/part-00000.csv.gz", upload_id, 2, second);
    ASSERT_TRUE(p2.ok()) << p2.error;
    S3Result done =
        s3.complete_multipart(bucket, "mp/part-00000.csv.gz", upload_id, {p1.etag, p2.etag});
    ASSERT_TRUE(done.ok()) << done.error;
    S3Result get;
    std::string got = fetch(s3, bucket, "mp/part-00000.csv.gz", &get);
    ASSERT_TRUE(get.ok()) << get.error;
    EXPECT_EQ(got.size(), first.size() + second.size());
    Sha256 want, have;
    want.update(first + second);
    have.update(got);
    EXPECT_EQ(have.hex_final(), want.hex_final());
}

TEST_F(S3, AnAbortedUploadLeavesNoObject) {
    S3Client s3(config());
    std::string upload_id;
    ASSERT_TRUE(s3.create_multipart(bucket, "mp/aborted", &upload_id).ok());
    ASSERT_TRUE(s3.upload_part(bucket, "mp/aborted", upload_id, 1, "x").ok());
    S3Result abort = s3.abort_multipart(bucket, "mp/aborted", upload_id);
    ASSERT_TRUE(abort.ok()) << abort.error;
    EXPECT_EQ(s3.head_object(bucket, "mp/aborted").status, 404);
}

TEST_F(S3, AWrongSecretIsRefusedAndNotShown) {
    S3Config c = config();
    c.credentials.secret_access_key = "wrong-secret-hunter2";
    S3Client s3(c);
    S3Result put = s3.put_object(bucket, "denied", "x");
    EXPECT_FALSE(put.ok());
    EXPECT_EQ(put.status, 403);
    EXPECT_EQ(put.error.find("hunter2"), std::string::npos) << put.error;
    EXPECT_EQ(put.attempts, 1) << "a 403 is not retried";
}

TEST_F(S3, AServerThatIsDownIsRetriedThenReported) {
    S3Config c = config();
    c.endpoint = "http://127.0.0.1:9";  // discard port: nothing listens
    c.max_attempts = 3;
    S3Client s3(c);
    std::vector<double> waits;
    s3.sleeper = [&](double s) { waits.push_back(s); };
    S3Result put = s3.put_object(bucket, "x", "x");
    EXPECT_FALSE(put.ok());
    EXPECT_EQ(put.attempts, 3);
    EXPECT_EQ(waits.size(), 2u);
    EXPECT_NE(put.error.find("connect"), std::string::npos) << put.error;
}

TEST_F(S3, ArchiveFileAboveThePartSizeGoesMultipart) {
    S3Client s3(config());
    const std::string key = "hb/public.heartbeats/hb_2026_11_03/part-00000.csv";
    ArchiveFileWriter w(make_s3_sink(s3, bucket, key, kMinPartBytes), "part-00000.csv", false);
    std::string row = "1,2026-11-03 10:00:00+00,ok,{\"temp_c\": 21}\n";
    std::string all;
    while (all.size() < 2 * kMinPartBytes + 1234) {
        w.write(row);
        all += row;
    }
    ManifestFile f = w.finish();
    S3Result get;
    std::string got = fetch(s3, bucket, key, &get);
    ASSERT_TRUE(get.ok()) << get.error;
    EXPECT_EQ(got, all);
    EXPECT_EQ(f.bytes, all.size());
    Sha256 sha;
    sha.update(all);
    EXPECT_EQ(f.sha256, sha.hex_final());
    // Its ETag is a multipart one: <md5>-<parts>.
    EXPECT_NE(s3.head_object(bucket, key).etag.find("-3"), std::string::npos);
}

TEST_F(S3, AnAbortedArchiveFileLeavesNoObject) {
    S3Client s3(config());
    const std::string key = "hb/public.heartbeats/hb_2026_11_04/part-00000.csv";
    {
        ArchiveFileWriter w(make_s3_sink(s3, bucket, key, kMinPartBytes), "part-00000.csv", false);
        w.write(std::string(kMinPartBytes + 10, 'x'));  // one part uploaded
        w.abort();
    }
    EXPECT_EQ(s3.head_object(bucket, key).status, 404);
}
