// The TLS client helper against a loopback server holding a throwaway certificate for
// "localhost" (its own CA): which CAs it trusts, which names it accepts, what it says.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "support/test_tls.hpp"
#include "voxbridge/net/tls_client.hpp"

namespace voxbridge::net {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

struct Identity {
  Identity() {
    std::tie(cert, key) = testing::self_signed_localhost();
    ca_file = (std::filesystem::temp_directory_path() /
               ("vb-tls-client-test-" + std::to_string(::getpid()) + ".pem"))
                  .string();
    std::ofstream(ca_file) << cert;
  }
  ~Identity() { std::filesystem::remove(ca_file); }
  std::string cert, key, ca_file;
};

const Identity& identity() {
  static const Identity id;  // one RSA key for the suite
  return id;
}

struct Handshake {
  boost::system::error_code client;  ///< the client's handshake result
  std::string untrusted;             ///< tls_verify_failure() after it
  std::string server_name;           ///< the SNI the server saw ("" for none)
};

/// One handshake over loopback: the client made by the helper with `o`, prepared for `host`.
Handshake handshake(const TlsClientOptions& o, const std::string& host) {
  asio::io_context io;
  ssl::context server_ctx(ssl::context::tls_server);
  server_ctx.use_certificate_chain(asio::buffer(identity().cert));
  server_ctx.use_private_key(asio::buffer(identity().key), ssl::context::pem);
  ssl::context client_ctx = tls_client_context(o);
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  ssl::stream<tcp::socket> server(io, server_ctx);
  ssl::stream<tcp::socket> client(io, client_ctx);
  Handshake out;
  out.client = asio::error::timed_out;
  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    if (!ec) server.async_handshake(ssl::stream_base::server, [](boost::system::error_code) {});
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) {
      out.client = ec;
      return;
    }
    tls_client_prepare(client.native_handle(), host, o.verify);
    client.async_handshake(ssl::stream_base::client,
                           [&](boost::system::error_code hec) { out.client = hec; });
  });
  io.run_for(std::chrono::seconds(5));
  out.untrusted = tls_verify_failure(client.native_handle());
  const char* sni = SSL_get_servername(server.native_handle(), TLSEXT_NAMETYPE_host_name);
  out.server_name = sni != nullptr ? sni : "";
  return out;
}

TEST(TlsClient, RefusesACaFileItCannotReadSayingWhich) {
  try {
    tls_client_context({"/nonexistent/ca.pem"});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("cannot load ca_file /nonexistent/ca.pem: ", 0), 0u) << what;
    EXPECT_GT(what.size(), std::string("cannot load ca_file /nonexistent/ca.pem: ").size());
  }
  // Without verification no CAs are read, so a missing file does not matter.
  EXPECT_NO_THROW(tls_client_context({"/nonexistent/ca.pem", false}));
}

TEST(TlsClient, OffersNothingOlderThanTls12) {
  auto ctx = tls_client_context({identity().ca_file});
  const auto options = SSL_CTX_get_options(ctx.native_handle());
  EXPECT_NE(options & SSL_OP_NO_TLSv1, 0u);
  EXPECT_NE(options & SSL_OP_NO_TLSv1_1, 0u);
  EXPECT_NE(options & SSL_OP_NO_SSLv3, 0u);
}

TEST(TlsClient, TrustsTheGivenCaForTheNameTheCertificateCarriesAndSendsIt) {
  const auto h = handshake({identity().ca_file}, "localhost");
  EXPECT_FALSE(h.client) << h.client.message();
  EXPECT_EQ(h.untrusted, "");
  EXPECT_EQ(h.server_name, "localhost");
}

TEST(TlsClient, RefusesAnotherNameEvenFromATrustedCa) {
  auto h = handshake({identity().ca_file}, "voxbridge.test");
  EXPECT_TRUE(h.client);
  EXPECT_EQ(h.untrusted, "hostname mismatch");
  EXPECT_EQ(h.server_name, "voxbridge.test");
  // An IP address is checked as one (the certificate names only DNS:localhost), and no SNI.
  h = handshake({identity().ca_file}, "127.0.0.1");
  EXPECT_TRUE(h.client);
  EXPECT_EQ(h.untrusted, "IP address mismatch");
  EXPECT_EQ(h.server_name, "");
}

TEST(TlsClient, WithoutACaFileTrustsOnlyTheSystemsCas) {
  const auto h = handshake({}, "localhost");
  EXPECT_TRUE(h.client);
  EXPECT_EQ(h.untrusted, "self-signed certificate");
}

TEST(TlsClient, WithoutVerificationAcceptsAnyCertificateAndName) {
  const auto h = handshake({"", false}, "voxbridge.test");
  EXPECT_FALSE(h.client) << h.client.message();
  EXPECT_EQ(h.server_name, "voxbridge.test");
}

}  // namespace
}  // namespace voxbridge::net
