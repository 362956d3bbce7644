// webhook.cpp — see webhook.hpp.
#include "core/webhook.hpp"

#include "core/manifest.hpp"

#include <curl/curl.h>

namespace hb::core {

std::string webhook_body(std::string_view text) {
    constexpr std::size_t kMax = 2000;
    std::size_t n = 0, chars = 0;
    while (n < text.size() && chars < kMax) {
        unsigned char c = static_cast<unsigned char>(text[n]);
        std::size_t len = c < 0x80         ? 1
                          : (c >> 5) == 6  ? 2
                          : (c >> 4) == 14 ? 3
                          : (c >> 3) == 30 ? 4
                                           : 1;
        if (n + len > text.size())
            break;
        n += len;
        chars++;
    }
    return "{\"content\": " + json_string(text.substr(0, n)) + "}";
}

namespace {
std::size_t discard(char *, std::size_t size, std::size_t n, void *) {
    return size * n;
}
}  // namespace

WebhookResult post_webhook(const std::string &url, const std::string &body, long timeout_s) {
    WebhookResult r;
    CURL *curl = curl_easy_init();
    if (curl == nullptr) {
        r.error = "cannot start an HTTP client";
        return r;
    }
    struct curl_slist *headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        r.error = std::string("the webhook did not answer: ") + curl_easy_strerror(rc);
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
        if (r.status < 200 || r.status >= 300)
            r.error = "the webhook answered HTTP " + std::to_string(r.status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return r;
}

}  // namespace hb::core
