// Unit tests of core/webhook: the body of an alert (the HTTP part is
// tested against a capture server by test/tap/006_archive.pl).
#include "core/webhook.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace hb::core;

TEST(WebhookBody, IsDiscordContentJson) {
    EXPECT_EQ(webhook_body("archive of hb_2026_11_02 failed: \"503\"\nretrying"),
              "{\"content\": \"archive of hb_2026_11_02 failed: \\\"503\\\"\\nretrying\"}");
}

TEST(WebhookBody, IsCutAtTwoThousandCharacters) {
    std::string body = webhook_body(std::string(2500, 'a'));
    EXPECT_EQ(body, "{\"content\": \"" + std::string(2000, 'a') + "\"}");
}

TEST(WebhookBody, CutsAtACharacterBoundary) {
    std::string text;
    for (int i = 0; i < 1500; ++i)
        text += "\xc3\xa9";  // é, two bytes
    std::string body = webhook_body(text);
    std::string expected;
    for (int i = 0; i < 1500; ++i)
        expected += "\xc3\xa9";
    EXPECT_EQ(body, "{\"content\": \"" + expected + "\"}");  // 1,500 characters: not cut
    text += std::string(600, 'b');
    body = webhook_body(text);
    EXPECT_EQ(body, "{\"content\": \"" + expected + std::string(500, 'b') + "\"}");
}
