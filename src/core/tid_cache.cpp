// tid_cache.cpp — see tid_cache.hpp.
#include "core/tid_cache.hpp"

namespace hb::core {

bool TidCache::find(std::string_view key, std::uint64_t *tid) noexcept {
    // assign() reuses probe_'s capacity; a key longer than any before it
    // allocates once, and an allocation failure here only means "not found".
    try {
        probe_.assign(key.data(), key.size());
    } catch (...) {
        return false;
    }
    auto it = map_.find(probe_);
    if (it == map_.end())
        return false;
    *tid = it->second;
    return true;
}

void TidCache::put(std::string_view key, std::uint64_t tid) {
    if (map_.size() >= capacity_)
        map_.clear();
    probe_.assign(key.data(), key.size());
    map_[probe_] = tid;
}

void TidCache::forget(std::string_view key) noexcept {
    try {
        probe_.assign(key.data(), key.size());
    } catch (...) {
        map_.clear();
        return;
    }
    map_.erase(probe_);
}

}  // namespace hb::core
