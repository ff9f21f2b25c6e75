#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "voxbridge/net/url.hpp"

namespace voxbridge::net {
namespace {

std::string error_of(const std::string& url) {
  try {
    parse_http_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(HttpUrl, TakesAPlainUrlApartWithTheSchemesDefaultPort) {
  const HttpUrl u = parse_http_url("http://pbx.example.com");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "pbx.example.com");
  EXPECT_EQ(u.port, "80");
  EXPECT_EQ(u.authority, "pbx.example.com");
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.origin, "http://pbx.example.com");
  EXPECT_EQ(parse_http_url("https://pbx.example.com").port, "443");
}

TEST(HttpUrl, KeepsPathAndQueryAndDropsTheFragment) {
  const HttpUrl u = parse_http_url("https://hooks.example.com:8443/vb/events?k=1&x=y#top");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "hooks.example.com");
  EXPECT_EQ(u.port, "8443");
  EXPECT_EQ(u.authority, "hooks.example.com:8443");
  EXPECT_EQ(u.target, "/vb/events?k=1&x=y");
  EXPECT_EQ(u.origin, "https://hooks.example.com:8443");
  EXPECT_EQ(parse_http_url("http://h?q=1").target, "/?q=1");
  EXPECT_EQ(parse_http_url("http://h#frag").target, "/");
}

TEST(HttpUrl, AnIpv6HostIsResolvedWithoutItsBracketsAndSentWithThem) {
  // Ollama on the loopback: the port must not be taken for part of the address.
  const HttpUrl u = parse_http_url("http://[::1]:11434/v1");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "11434");
  EXPECT_EQ(u.authority, "[::1]:11434");
  EXPECT_EQ(u.target, "/v1");
  const HttpUrl v = parse_http_url("https://[fe80::1]");
  EXPECT_EQ(v.host, "fe80::1");
  EXPECT_EQ(v.port, "443");
  EXPECT_EQ(v.authority, "[fe80::1]");
}

TEST(HttpUrl, SaysWhatIsWrongWithABadOne) {
  EXPECT_EQ(error_of("ftp://x"), "must start with http:// or https://");
  EXPECT_EQ(error_of("wss://pbx:8089"), "must start with http:// or https://");
  EXPECT_EQ(error_of("HTTP://pbx"), "must start with http:// or https://");
  EXPECT_EQ(error_of("http://"), "no host");
  EXPECT_EQ(error_of("http://:8080/x"), "no host");
  EXPECT_EQ(error_of("http://h:"), "empty port");
  EXPECT_EQ(error_of("http://h:0"), "bad port '0'");
  EXPECT_EQ(error_of("http://h:65536"), "bad port '65536'");
  EXPECT_EQ(error_of("http://h:80a"), "bad port '80a'");
  EXPECT_EQ(error_of("http://h:-1"), "bad port '-1'");
  EXPECT_EQ(error_of("http://[::1"), "unclosed '[' in the host");
  EXPECT_EQ(error_of("http://[::1]x"), "bad host '[::1]x'");
  EXPECT_EQ(error_of("http://[::1]:"), "empty port");
  EXPECT_EQ(error_of("https://vb:secret@pbx/"), "credentials in the URL are not supported");
  EXPECT_EQ(error_of("http://h/a b"), "spaces or control characters (percent-encode them)");
  EXPECT_EQ(error_of("http://h/\r\nX: y"), "spaces or control characters (percent-encode them)");
  EXPECT_EQ(error_of("http://h:65535/"), "(accepted)");
}

}  // namespace
}  // namespace voxbridge::net
