// Unit tests of core/archive_writer with the file sink (the S3 sink is
// tested against a real server in test/s3).
#include "core/archive_writer.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using namespace hb::core;

namespace {

std::string scratch_dir() {
    char tmpl[] = "/tmp/hb_archive_writer_XXXXXX";
    char *d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return d ? d : "/tmp";
}

std::string slurp(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool exists(const std::string &path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

std::string gunzip_file(const std::string &path) {
    gzFile f = gzopen(path.c_str(), "rb");
    std::string out;
    char buf[4096];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    gzclose(f);
    return out;
}

std::string csv_rows(int n) {
    std::string s = "device_id,ts,status\n";
    for (int i = 0; i < n; ++i)
        s += std::to_string(i) + ",2026-11-02 10:00:00+00,ok\n";
    return s;
}

}  // namespace

TEST(ArchiveFileWriter, GzipFileHasTheRowsAndTheRecordedDigest) {
    std::string dir = scratch_dir();
    std::string path = dir + "/public.heartbeats/hb_2026_11_02/part-00000.csv.gz";
    ArchiveFileWriter w(make_file_sink(path), "part-00000.csv.gz", true);
    std::string csv = csv_rows(5000);
    for (std::size_t i = 0; i < csv.size(); i += 1000)
        w.write(std::string_view(csv).substr(i, 1000));
    ManifestFile f = w.finish();
    EXPECT_EQ(f.name, "part-00000.csv.gz");
    std::string stored = slurp(path);
    EXPECT_EQ(f.bytes, stored.size());
    Sha256 sha;
    sha.update(stored);
    EXPECT_EQ(f.sha256, sha.hex_final());
    EXPECT_EQ(w.csv_bytes(), csv.size());
    EXPECT_EQ(gunzip_file(path), csv);
    EXPECT_FALSE(exists(path + ".partial"));
}

TEST(ArchiveFileWriter, UncompressedFileIsTheCsv) {
    std::string dir = scratch_dir();
    ArchiveFileWriter w(make_file_sink(dir + "/p.csv"), "p.csv", false);
    w.write("a,b\n1,2\n");
    ManifestFile f = w.finish();
    EXPECT_EQ(slurp(dir + "/p.csv"), "a,b\n1,2\n");
    EXPECT_EQ(f.bytes, 8u);
}

TEST(ArchiveFileWriter, AnAbortedFileLeavesNothing) {
    std::string dir = scratch_dir();
    {
        ArchiveFileWriter w(make_file_sink(dir + "/x.csv.gz"), "x.csv.gz", true);
        w.write(csv_rows(10));
        w.abort();
    }
    EXPECT_FALSE(exists(dir + "/x.csv.gz"));
    EXPECT_FALSE(exists(dir + "/x.csv.gz.partial"));
    {
        ArchiveFileWriter w(make_file_sink(dir + "/y.csv.gz"), "y.csv.gz", true);
        w.write(csv_rows(10));
    }  // destroyed unfinished
    EXPECT_FALSE(exists(dir + "/y.csv.gz"));
    EXPECT_FALSE(exists(dir + "/y.csv.gz.partial"));
}

TEST(ArchiveFileWriter, APathThatCannotBeADirectoryIsAClearError) {
    std::string dir = scratch_dir();
    { std::ofstream(dir + "/plain_file") << "x"; }
    try {
        make_file_sink(dir + "/plain_file/x.csv");
        FAIL() << "no error";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(std::string(e.what()).find("plain_file"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("Not a directory"), std::string::npos) << e.what();
    }
}
