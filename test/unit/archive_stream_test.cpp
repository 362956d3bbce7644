// Unit tests of core/archive_stream: COPY's CSV rules, SHA-256, gzip.
#include "core/archive_stream.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

using namespace hb::core;

namespace {
std::string row(std::initializer_list<const char *> fields) {
    CsvWriter w;
    for (const char *f : fields) {
        if (f == nullptr)
            w.null();
        else
            w.field(f);
    }
    w.end_row();
    return w.buffer();
}

std::string gunzip(const std::string &gz) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(gz.data()));
    z.avail_in = static_cast<uInt>(gz.size());
    std::string out;
    char buf[4096];
    int rc;
    do {
        z.next_out = reinterpret_cast<Bytef *>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END) << rc;
        out.append(buf, sizeof buf - z.avail_out);
    } while (rc != Z_STREAM_END && rc >= 0);
    inflateEnd(&z);
    return out;
}
}  // namespace

TEST(CsvWriter, PlainValuesAreNotQuoted) {
    EXPECT_EQ(row({"42", "ok", "2026-11-02 10:00:00+00"}), "42,ok,2026-11-02 10:00:00+00\n");
}

TEST(CsvWriter, NullIsNothingAndEmptyIsQuoted) {
    EXPECT_EQ(row({nullptr, "", "x"}), ",\"\",x\n");
}

TEST(CsvWriter, DelimiterQuoteAndNewlinesAreQuoted) {
    EXPECT_EQ(row({"a,b", "say \"hi\"", "two\nlines", "cr\r"}),
              "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\"\n");
}

TEST(CsvWriter, EndOfDataMarkerIsQuoted) {
    EXPECT_EQ(row({"\\.", "\\.x"}), "\"\\.\",\\.x\n");
}

TEST(CsvWriter, JsonKeepsItsQuotesDoubled) {
    EXPECT_EQ(row({"{\"temp_c\": 21}"}), "\"{\"\"temp_c\"\": 21}\"\n");
}

TEST(CsvWriter, TakeHandsOverAndEmpties) {
    CsvWriter w;
    w.field("a");
    w.end_row();
    std::string got;
    w.take(&got);
    EXPECT_EQ(got, "a\n");
    EXPECT_TRUE(w.buffer().empty());
    w.field("b");
    w.end_row();
    EXPECT_EQ(w.buffer(), "b\n");
}

TEST(Sha256, KnownVectors) {
    Sha256 empty;
    EXPECT_EQ(empty.hex_final(),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 abc;
    abc.update("abc");
    EXPECT_EQ(abc.hex_final(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, PiecesDigestLikeTheWhole) {
    std::string text(100000, 'x');
    for (std::size_t i = 0; i < text.size(); ++i)
        text[i] = static_cast<char>('a' + i % 26);
    Sha256 whole, pieces;
    whole.update(text);
    for (std::size_t i = 0; i < text.size(); i += 777)
        pieces.update(std::string_view(text).substr(i, 777));
    EXPECT_EQ(whole.hex_final(), pieces.hex_final());
}

TEST(Sha256, NoUpdateAfterTheDigest) {
    Sha256 s;
    s.hex_final();
    EXPECT_THROW(s.update("x"), std::logic_error);
}

TEST(GzipWriter, RoundTripsThroughZlib) {
    std::string gz;
    GzipWriter w([&](const char *p, std::size_t n) { gz.append(p, n); });
    std::string text;
    for (int i = 0; i < 20000; ++i)
        text += std::to_string(i) + ",2026-11-02 10:00:00+00,ok,{\"temp_c\": 21}\n";
    for (std::size_t i = 0; i < text.size(); i += 4096)
        w.write(std::string_view(text).substr(i, 4096));
    w.finish();
    EXPECT_EQ(w.bytes_in(), text.size());
    EXPECT_EQ(w.bytes_out(), gz.size());
    EXPECT_LT(gz.size(), text.size() / 4);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    EXPECT_EQ(gunzip(gz), text);
}

TEST(GzipWriter, IncompressibleDataRoundTrips) {
    std::mt19937 rng(7);
    std::string text(300000, '\0');
    for (char &c : text)
        c = static_cast<char>(rng());
    std::string gz;
    GzipWriter w([&](const char *p, std::size_t n) { gz.append(p, n); });
    w.write(text);
    w.finish();
    EXPECT_EQ(gunzip(gz), text);
}

TEST(GzipWriter, EmptyInputIsAValidGzipFile) {
    std::string gz;
    GzipWriter w([&](const char *p, std::size_t n) { gz.append(p, n); });
    w.finish();
    EXPECT_EQ(gunzip(gz), "");
    EXPECT_THROW(w.write("x"), std::logic_error);
}

namespace {
std::string temp_file(const std::string &name, const std::string &content) {
    std::string path = ::testing::TempDir() + "hb_gzreader_" + name;
    FILE *f = fopen(path.c_str(), "wb");
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
    return path;
}

std::string read_all(GzFileReader &r, std::size_t chunk) {
    std::string out;
    std::string buf(chunk, '\0');
    while (std::size_t n = r.read(&buf[0], buf.size()))
        out.append(buf.data(), n);
    return out;
}
}  // namespace

TEST(GzFileReader, ReadsWhatGzipWriterWrote) {
    std::string text;
    for (int i = 0; i < 5000; ++i)
        text += std::to_string(i) + ",\"a,b\",\n";
    std::string gz;
    GzipWriter w([&](const char *p, std::size_t n) { gz.append(p, n); }, 1);
    w.write(text);
    w.finish();
    GzFileReader r(temp_file("gz", gz));
    EXPECT_EQ(read_all(r, 777), text);
}

TEST(GzFileReader, PassesAnUncompressedFileThrough) {
    GzFileReader r(temp_file("plain", "device_id,ts\n1,2026-12-01\n"));
    EXPECT_EQ(read_all(r, 4), "device_id,ts\n1,2026-12-01\n");
}

TEST(GzFileReader, ACorruptFileThrows) {
    std::string gz;
    GzipWriter w([&](const char *p, std::size_t n) { gz.append(p, n); });
    w.write(std::string(100000, 'x') + "tail");
    w.finish();
    gz[gz.size() / 2] ^= 0x5a;  // a flipped byte in the deflate stream
    gz[gz.size() / 2 + 1] ^= 0x5a;
    GzFileReader r(temp_file("corrupt", gz));
    EXPECT_THROW(read_all(r, 4096), std::runtime_error);
}

TEST(GzFileReader, AMissingFileThrows) {
    EXPECT_THROW(GzFileReader("/nonexistent/hb_gz"), std::runtime_error);
}
