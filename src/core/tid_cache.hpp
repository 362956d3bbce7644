// tid_cache.hpp — where each device's last-status row was last seen.
//
// Pure C++ (no postgres.h). Maps device key bytes to the TID the row's
// primary-key entry points at (the root of its HOT chain), so that the
// writer can go straight to the row instead of descending the index for
// every device of every batch. Only a hint: the writer checks that the row
// it finds there is live and is that device's, and falls back to the index
// otherwise. Bounded: when full it starts over.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace hb::core {

class TidCache {
public:
    explicit TidCache(std::size_t capacity) : capacity_(capacity) {}

    static std::uint64_t pack(std::uint32_t block, std::uint16_t offset) noexcept {
        return (static_cast<std::uint64_t>(block) << 16) | offset;
    }
    static std::uint32_t block_of(std::uint64_t tid) noexcept {
        return static_cast<std::uint32_t>(tid >> 16);
    }
    static std::uint16_t offset_of(std::uint64_t tid) noexcept {
        return static_cast<std::uint16_t>(tid & 0xffffu);
    }

    // The TID remembered for key, if any.
    bool find(std::string_view key, std::uint64_t *tid) noexcept;
    // Remembers key's TID. May throw std::bad_alloc.
    void put(std::string_view key, std::uint64_t tid);
    void forget(std::string_view key) noexcept;
    std::size_t size() const noexcept { return map_.size(); }

private:
    std::size_t capacity_;
    std::unordered_map<std::string, std::uint64_t> map_;
    std::string probe_;  // reused lookup key: a known device costs no allocation
};

}  // namespace hb::core
