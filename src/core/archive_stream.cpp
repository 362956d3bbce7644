// archive_stream.cpp — see archive_stream.hpp.
#include "core/archive_stream.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <stdexcept>

namespace hb::core {

// ------------------------------------------------------------------ CSV

void CsvWriter::separate() {
    if (row_open_)
        out_ += ',';
    row_open_ = true;
}

void CsvWriter::field(std::string_view v) {
    separate();
    bool quote = v.empty() || v == "\\." || v.find_first_of(",\"\r\n") != std::string_view::npos;
    if (!quote) {
        out_.append(v);
        return;
    }
    out_ += '"';
    for (char c : v) {
        if (c == '"')
            out_ += '"';
        out_ += c;
    }
    out_ += '"';
}

void CsvWriter::null() {
    separate();
}

void CsvWriter::end_row() {
    out_ += '\n';
    row_open_ = false;
}

void CsvWriter::take(std::string *into) {
    into->swap(out_);
    out_.clear();
}

// ------------------------------------------------------------------ SHA-256

struct Sha256::Impl {
    EVP_MD_CTX *ctx = nullptr;
    bool done = false;
};

Sha256::Sha256() : impl_(new Impl) {
    impl_->ctx = EVP_MD_CTX_new();
    if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256: cannot initialise the digest");
}

Sha256::~Sha256() {
    if (impl_ && impl_->ctx)
        EVP_MD_CTX_free(impl_->ctx);
}

void Sha256::update(const void *data, std::size_t n) {
    if (impl_->done)
        throw std::logic_error("SHA-256: update after the digest was taken");
    if (n > 0 && EVP_DigestUpdate(impl_->ctx, data, n) != 1)
        throw std::runtime_error("SHA-256: update failed");
}

std::string Sha256::hex_final() {
    if (impl_->done)
        throw std::logic_error("SHA-256: the digest was already taken");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1)
        throw std::runtime_error("SHA-256: final failed");
    impl_->done = true;
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        hex += kHex[md[i] >> 4];
        hex += kHex[md[i] & 0xf];
    }
    return hex;
}

// ------------------------------------------------------------------ gzip

struct GzipWriter::Impl {
    z_stream z{};
    char buf[64 * 1024];
};

GzipWriter::GzipWriter(Sink sink, int level) : impl_(new Impl), sink_(std::move(sink)) {
    // windowBits 15 + 16: a gzip header and trailer around the deflate data.
    if (deflateInit2(&impl_->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("gzip: cannot initialise the compressor");
}

GzipWriter::~GzipWriter() {
    if (impl_)
        deflateEnd(&impl_->z);
}

void GzipWriter::pump(int flush) {
    z_stream &z = impl_->z;
    int rc;
    do {
        z.next_out = reinterpret_cast<Bytef *>(impl_->buf);
        z.avail_out = sizeof impl_->buf;
        rc = deflate(&z, flush);
        if (rc == Z_STREAM_ERROR)
            throw std::runtime_error("gzip: compressor error");
        std::size_t have = sizeof impl_->buf - z.avail_out;
        if (have > 0) {
            out_ += have;
            sink_(impl_->buf, have);
        }
    } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
}

void GzipWriter::write(const void *data, std::size_t n) {
    if (finished_)
        throw std::logic_error("gzip: write after finish");
    const auto *p = static_cast<const Bytef *>(data);
    while (n > 0) {
        // zlib counts in uInt: feed at most 1 GiB at a time.
        uInt chunk = static_cast<uInt>(n > (1u << 30) ? (1u << 30) : n);
        impl_->z.next_in = const_cast<Bytef *>(p);
        impl_->z.avail_in = chunk;
        pump(Z_NO_FLUSH);
        in_ += chunk;
        p += chunk;
        n -= chunk;
    }
}

void GzipWriter::finish() {
    if (finished_)
        return;
    impl_->z.next_in = nullptr;
    impl_->z.avail_in = 0;
    pump(Z_FINISH);
    finished_ = true;
}

GzFileReader::GzFileReader(const std::string &path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr)
        throw std::runtime_error("cannot open archive file " + path);
    gzbuffer(f, 256 * 1024);
    file_ = f;
}

GzFileReader::~GzFileReader() {
    if (file_ != nullptr)
        gzclose(static_cast<gzFile>(file_));
}

std::size_t GzFileReader::read(char *buf, std::size_t n) {
    int want = n > (1u << 30) ? (1 << 30) : static_cast<int>(n);
    int got = gzread(static_cast<gzFile>(file_), buf, static_cast<unsigned>(want));
    if (got < 0) {
        int code = 0;
        const char *msg = gzerror(static_cast<gzFile>(file_), &code);
        throw std::runtime_error(std::string("archive file is corrupt: ") +
                                 (msg ? msg : "read error"));
    }
    return static_cast<std::size_t>(got);
}

}  // namespace hb::core
