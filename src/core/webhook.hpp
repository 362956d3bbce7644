// webhook.hpp — alerts to a chat webhook (Discord's JSON: {"content": ...}).
//
// Pure C++ on libcurl (no postgres.h), run by the worker outside any
// transaction. The URL carries the webhook's token: no error says it.
#pragma once
#include <string>
#include <string_view>

namespace hb::core {

struct WebhookResult {
    long status = 0;    // HTTP status (0: no answer)
    std::string error;  // empty when the hook took it (2xx)
    bool ok() const { return error.empty(); }
};

// The JSON body of an alert: {"content": text}, text cut to Discord's
// 2,000 characters (at a UTF-8 boundary).
std::string webhook_body(std::string_view text);

// POSTs body (JSON) to url, waiting at most timeout_s; never retries (the
// next failure alerts again, after the rate limit).
WebhookResult post_webhook(const std::string &url, const std::string &body, long timeout_s);

}  // namespace hb::core
