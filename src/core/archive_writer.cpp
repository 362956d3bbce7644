// archive_writer.cpp — see archive_writer.hpp.
#include "core/archive_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace hb::core {
namespace {

std::runtime_error os_error(const std::string &what, const std::string &path) {
    return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void make_dirs(const std::string &dir) {
    std::string p;
    for (std::size_t i = 0; i < dir.size(); ++i) {
        p += dir[i];
        if ((dir[i] == '/' && i > 0) || i + 1 == dir.size())
            if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST)
                throw os_error("cannot create directory", p);
    }
}

class FileSink final : public ObjectSink {
public:
    explicit FileSink(std::string path) : path_(std::move(path)), partial_(path_ + ".partial") {
        std::size_t slash = path_.rfind('/');
        if (slash != std::string::npos && slash > 0)
            make_dirs(path_.substr(0, slash));
        fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd_ < 0)
            throw os_error("cannot create", partial_);
    }
    ~FileSink() override { abort(); }
    void write(const char *data, std::size_t n) override {
        while (n > 0) {
            ssize_t k = ::write(fd_, data, n);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                throw os_error("cannot write", partial_);
            }
            data += k;
            n -= static_cast<std::size_t>(k);
        }
    }
    void finish() override {
        if (::fsync(fd_) != 0)
            throw os_error("cannot fsync", partial_);
        if (::close(fd_) != 0) {
            fd_ = -1;
            throw os_error("cannot close", partial_);
        }
        fd_ = -1;
        if (::rename(partial_.c_str(), path_.c_str()) != 0)
            throw os_error("cannot rename to", path_);
        // The rename is durable once the directory is.
        std::size_t slash = path_.rfind('/');
        std::string dir =
            slash == std::string::npos ? "." : path_.substr(0, slash == 0 ? 1 : slash);
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
        done_ = true;
    }
    void abort() noexcept override {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
        if (!done_)
            ::unlink(partial_.c_str());
        done_ = true;
    }

private:
    std::string path_, partial_;
    int fd_ = -1;
    bool done_ = false;
};

class S3Sink final : public ObjectSink {
public:
    S3Sink(S3Client &client, std::string bucket, std::string key, std::size_t part_bytes)
        : s3_(client),
          bucket_(std::move(bucket)),
          key_(std::move(key)),
          part_bytes_(clamp_part_size(part_bytes)) {
        buf_.reserve(part_bytes_);
    }
    ~S3Sink() override { abort(); }
    void write(const char *data, std::size_t n) override {
        while (n > 0) {
            std::size_t k = std::min(n, part_bytes_ - buf_.size());
            buf_.append(data, k);
            data += k;
            n -= k;
            if (buf_.size() == part_bytes_)
                flush_part();
        }
    }
    void finish() override {
        if (upload_id_.empty()) {  // small: one PUT
            check(s3_.put_object(bucket_, key_, buf_));
        } else {
            if (!buf_.empty())
                flush_part();
            check(s3_.complete_multipart(bucket_, key_, upload_id_, etags_));
        }
        upload_id_.clear();
        done_ = true;
    }
    void abort() noexcept override {
        if (!done_ && !upload_id_.empty())
            s3_.abort_multipart(bucket_, key_, upload_id_);
        upload_id_.clear();
        done_ = true;
    }

private:
    void check(const S3Result &r) {
        if (!r.ok())
            throw std::runtime_error(r.error);
    }
    void flush_part() {
        if (upload_id_.empty())
            check(s3_.create_multipart(bucket_, key_, &upload_id_));
        S3Result r = s3_.upload_part(bucket_, key_, upload_id_,
                                     static_cast<unsigned>(etags_.size() + 1), buf_);
        check(r);
        etags_.push_back(r.etag);
        if (etags_.size() > kMaxParts)
            throw std::runtime_error(
                "the archive file needs more than 10,000 parts: raise the part size");
        buf_.clear();
    }
    S3Client &s3_;
    std::string bucket_, key_, upload_id_, buf_;
    std::size_t part_bytes_;
    std::vector<std::string> etags_;
    bool done_ = false;
};

}  // namespace

std::unique_ptr<ObjectSink> make_file_sink(const std::string &path) {
    return std::make_unique<FileSink>(path);
}

std::unique_ptr<ObjectSink> make_s3_sink(S3Client &client, std::string bucket, std::string key,
                                         std::size_t part_bytes) {
    return std::make_unique<S3Sink>(client, std::move(bucket), std::move(key), part_bytes);
}

ArchiveFileWriter::ArchiveFileWriter(std::unique_ptr<ObjectSink> sink, std::string name, bool gzip,
                                     int gzip_level)
    : sink_(std::move(sink)), name_(std::move(name)) {
    if (gzip)
        gzip_ = std::make_unique<GzipWriter>([this](const char *p, std::size_t n) { store(p, n); },
                                             gzip_level);
}

ArchiveFileWriter::~ArchiveFileWriter() {
    if (!done_)
        abort();
}

void ArchiveFileWriter::store(const char *p, std::size_t n) {
    sha_.update(p, n);
    stored_ += n;
    sink_->write(p, n);
}

void ArchiveFileWriter::write(std::string_view csv) {
    csv_bytes_ += csv.size();
    if (gzip_)
        gzip_->write(csv);
    else
        store(csv.data(), csv.size());
}

ManifestFile ArchiveFileWriter::finish() {
    if (gzip_)
        gzip_->finish();
    sink_->finish();
    done_ = true;
    return ManifestFile{name_, stored_, sha_.hex_final()};
}

void ArchiveFileWriter::abort() noexcept {
    if (sink_)
        sink_->abort();
    done_ = true;
}

}  // namespace hb::core
