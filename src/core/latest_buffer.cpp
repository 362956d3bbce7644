// latest_buffer.cpp — see latest_buffer.hpp.
#include "core/latest_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <utility>

#include "core/key_codec.hpp"

namespace hb::core {

std::size_t LatestBuffer::KeyHash::operator()(const Key &k) const noexcept {
    const std::size_t h = std::hash<std::string_view>{}(k.bytes);
    return h ^ (static_cast<std::size_t>(k.target) * 0x9e3779b97f4a7c15ull);
}

void LatestBuffer::offer(std::uint32_t target, std::uint32_t level, std::string_view key,
                         const RowRef &ref) {
    if (layers_.empty() || layers_.back().level < level) {
        layers_.emplace_back();
        layers_.back().level = level;
    }
    // A level below the newest layer cannot offer: the newer levels have
    // ended (committed levels were relabelled, aborted ones dropped).
    Layer &layer = layers_.back();
    // Look up through a reused key so that a device already held costs no
    // allocation, whatever the length of its key.
    probe_.target = target;
    probe_.bytes.assign(key.data(), key.size());
    auto it = layer.rows.find(probe_);
    if (it == layer.rows.end()) {
        layer.key_bytes += key.size();
        layer.rows.emplace(probe_, ref);
    } else if (ref.ts > it->second.ts) {
        it->second = ref;
    }
}

void LatestBuffer::subxact_commit(std::uint32_t level, std::uint32_t parent) noexcept {
    // Relabel only: merging could allocate, and a failure half way would
    // leave rows of a failed subtransaction in its parent's layer. Layers of
    // one level are merged when they are drained.
    for (auto it = layers_.rbegin(); it != layers_.rend() && it->level >= level; ++it)
        if (it->level == level)
            it->level = parent;
}

void LatestBuffer::subxact_abort(std::uint32_t level) noexcept {
    while (!layers_.empty() && layers_.back().level >= level)
        layers_.pop_back();
}

LatestBuffer::Extent LatestBuffer::top_extent() const noexcept {
    Extent e;
    const std::uint32_t level = top_level();
    for (auto it = layers_.rbegin(); it != layers_.rend() && it->level == level; ++it) {
        e.rows += it->rows.size();
        e.key_bytes += it->key_bytes;
    }
    return e;
}

std::size_t LatestBuffer::drain_top(DrainedRow *out, char *arena) noexcept {
    if (layers_.empty())
        return 0;
    const std::uint32_t level = top_level();
    std::size_t n = 0;
    while (!layers_.empty() && layers_.back().level == level) {
        for (const auto &entry : layers_.back().rows) {
            const std::string &bytes = entry.first.bytes;
            if (!bytes.empty())
                std::memcpy(arena, bytes.data(), bytes.size());
            out[n].target = entry.first.target;
            out[n].key = arena;
            out[n].key_len = static_cast<std::uint32_t>(bytes.size());
            out[n].ref = entry.second;
            arena += bytes.size();
            ++n;
        }
        layers_.pop_back();
    }
    // Lock order: target, then key bytes; the newest first within a key so
    // that the duplicates left by several layers of one level fold into it.
    std::sort(out, out + n, [](const DrainedRow &a, const DrainedRow &b) {
        if (a.target != b.target)
            return a.target < b.target;
        const int c = compare_keys({a.key, a.key_len}, {b.key, b.key_len});
        if (c != 0)
            return c < 0;
        return a.ref.ts > b.ref.ts;
    });
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (kept > 0 && out[kept - 1].target == out[i].target &&
            compare_keys({out[kept - 1].key, out[kept - 1].key_len},
                         {out[i].key, out[i].key_len}) == 0)
            continue;
        out[kept++] = out[i];
    }
    return kept;
}

}  // namespace hb::core
