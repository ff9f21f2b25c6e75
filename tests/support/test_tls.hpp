// A throwaway TLS identity for test servers (the mock chat server, the fake AMI).
#pragma once

#include <string>
#include <utility>

namespace voxbridge::testing {

/// A self-signed certificate for "localhost" (its own CA): {certificate PEM, key PEM}.
std::pair<std::string, std::string> self_signed_localhost();

/// The same for `host`: a DNS name (subjectAltName DNS:host) or an IP literal (IP:host).
std::pair<std::string, std::string> self_signed(const std::string& host);

}  // namespace voxbridge::testing
