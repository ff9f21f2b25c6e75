// TLS for the connections voxbridge opens itself (AMI, ARI, webhooks, the OpenAI-compatible
// LLM): one way to trust CAs, to name the server (SNI) and to check the name it proves.
//
// Offers: tls_client_context() makes a client context (TLS 1.2 or newer; unless verify is off,
// the server's chain must lead to ca_file's CAs or the system's); tls_client_prepare() readies
// one connection for a host; tls_verify_failure() says in words why a certificate was refused.
// Thread: none of its own. A context, once made, may serve streams on any thread; prepare and
// verify_failure run on the thread that drives the stream, before and after its handshake.
// Ownership: the caller owns the context; it must outlive every stream made with it.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <string>

namespace voxbridge::net {

struct TlsClientOptions {
  std::string ca_file;  ///< PEM CAs to trust; empty = the system's
  bool verify = true;   ///< check the server's certificate (chain and name); off = accept any
};

/// A client context for `o`. Throws std::runtime_error when the CAs cannot be loaded, saying
/// "cannot load ca_file PATH: REASON" or "cannot load the system's CAs: REASON".
boost::asio::ssl::context tls_client_context(const TlsClientOptions& o);

/// Readies `ssl` (a client stream's native_handle(), before its handshake) for `host`: SNI when
/// `host` is a name, not an IP address; with `verify`, the certificate must be issued for `host`
/// (a DNS name, wildcards as usual, or the IP address), else the handshake fails. Throws
/// std::runtime_error if OpenSSL refuses the name.
void tls_client_prepare(SSL* ssl, const std::string& host, bool verify);

/// Why the certificate check of `ssl`'s handshake failed, in OpenSSL's words ("self-signed
/// certificate", "IP address mismatch"...); empty if it passed or never ran.
std::string tls_verify_failure(const SSL* ssl);

}  // namespace voxbridge::net
