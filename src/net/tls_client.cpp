#include "voxbridge/net/tls_client.hpp"

#include <boost/asio/ip/address.hpp>
#include <stdexcept>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace voxbridge::net {

namespace ssl = boost::asio::ssl;

ssl::context tls_client_context(const TlsClientOptions& o) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!o.verify) {
    ctx.set_verify_mode(ssl::verify_none);
    return ctx;
  }
  boost::system::error_code ec;
  if (o.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(o.ca_file, ec);
  }
  if (ec) {
    throw std::runtime_error(
        (o.ca_file.empty() ? "cannot load the system's CAs" : "cannot load ca_file " + o.ca_file) +
        ": " + ec.message());
  }
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

void tls_client_prepare(SSL* ssl, const std::string& host, bool verify) {
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  if (not_ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
    throw std::runtime_error("TLS: cannot send the server name " + host);
  }
  if (!verify) return;
  // OpenSSL checks the name during the handshake, so a mismatch is its verify result too.
  const int set = not_ip ? SSL_set1_host(ssl, host.c_str())
                         : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  if (set != 1) throw std::runtime_error("TLS: cannot check certificates for " + host);
}

std::string tls_verify_failure(const SSL* ssl) {
  const long verdict = SSL_get_verify_result(ssl);
  return verdict == X509_V_OK ? std::string() : X509_verify_cert_error_string(verdict);
}

}  // namespace voxbridge::net
