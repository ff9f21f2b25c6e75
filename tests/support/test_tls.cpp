#include "support/test_tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace voxbridge::testing {

std::pair<std::string, std::string> self_signed_localhost() {
  return self_signed("localhost");
}

std::pair<std::string, std::string> self_signed(const std::string& host) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  const bool ip = host.find_first_not_of("0123456789.") == std::string::npos ||
                  host.find(':') != std::string::npos;
  const std::string san = (ip ? "IP:" : "DNS:") + host;
  for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                                   std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  auto pem = [](auto write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
  };
  auto out = std::pair{pem([&](BIO* b) { PEM_write_bio_X509(b, x); }), pem([&](BIO* b) {
                         PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
                       })};
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace voxbridge::testing
