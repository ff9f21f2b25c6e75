#include "voxbridge/control/ami_codec.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace voxbridge::control {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace

std::string_view AmiMessage::get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (iequals(k, key)) return v;
  }
  return {};
}

bool AmiMessage::has(std::string_view key) const {
  return std::any_of(fields.begin(), fields.end(),
                     [&](const auto& f) { return iequals(f.first, key); });
}

std::vector<std::string_view> AmiMessage::get_all(std::string_view key) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : fields) {
    if (iequals(k, key)) out.push_back(v);
  }
  return out;
}

std::optional<std::string> encode_action(std::string_view action, std::string_view action_id,
                                         const AmiFields& fields, std::string* error) {
  auto refuse = [&](std::string why) -> std::optional<std::string> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  if (action.empty() || has_line_break(action) || has_line_break(action_id)) {
    return refuse("action name or id holds a line break");
  }
  std::string out;
  out.reserve(64 + fields.size() * 32);
  out.append("Action: ").append(action).append("\r\n");
  if (!action_id.empty()) out.append("ActionID: ").append(action_id).append("\r\n");
  for (const auto& [k, v] : fields) {
    if (k.empty() || has_line_break(k) || k.find(':') != std::string::npos) {
      return refuse("bad field name '" + k + "'");
    }
    if (has_line_break(v)) return refuse("the value of " + k + " holds a line break");
    out.append(k).append(": ").append(v).append("\r\n");
  }
  out.append("\r\n");
  return out;
}

void AmiParser::reset() {
  partial_.clear();
  current_.fields.clear();
  banner_.clear();
  error_.clear();
  banner_pending_ = false;
  failed_ = false;
}

bool AmiParser::feed(std::string_view bytes, std::vector<AmiMessage>& out) {
  if (failed_) return false;
  while (!bytes.empty()) {
    const std::size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + bytes.size() > limits_.max_line_bytes) {
        failed_ = true;
        error_ = "line longer than " + std::to_string(limits_.max_line_bytes) + " bytes";
        return false;
      }
      partial_.append(bytes);
      return true;
    }
    std::string_view piece = bytes.substr(0, nl);
    bytes.remove_prefix(nl + 1);
    std::string_view l;
    if (!partial_.empty()) {
      partial_.append(piece);
      l = partial_;
    } else {
      l = piece;
    }
    if (l.size() > limits_.max_line_bytes) {
      failed_ = true;
      error_ = "line longer than " + std::to_string(limits_.max_line_bytes) + " bytes";
      return false;
    }
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    const bool ok = line(l, out);
    partial_.clear();
    if (!ok) return false;
  }
  return true;
}

bool AmiParser::line(std::string_view l, std::vector<AmiMessage>& out) {
  if (banner_pending_) {
    banner_pending_ = false;
    banner_.assign(l);
    if (l.rfind("Asterisk Call Manager/", 0) != 0) {
      failed_ = true;
      error_ = "not an Asterisk manager (banner '" + banner_.substr(0, 80) + "')";
      return false;
    }
    return true;
  }
  if (l.empty()) {
    if (!current_.fields.empty()) {
      out.push_back(std::move(current_));
      current_.fields.clear();
    }
    return true;
  }
  if (current_.fields.size() >= limits_.max_fields) {
    failed_ = true;
    error_ = "message of more than " + std::to_string(limits_.max_fields) + " lines";
    return false;
  }
  const std::size_t colon = l.find(':');
  if (colon == std::string_view::npos) {
    current_.fields.emplace_back(std::string(), std::string(l));  // free-form output line
    return true;
  }
  std::string_view value = l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  current_.fields.emplace_back(std::string(l.substr(0, colon)), std::string(value));
  return true;
}

std::string ami_md5_key(std::string_view challenge, std::string_view secret) {
  std::string input;
  input.reserve(challenge.size() + secret.size());
  input.append(challenge).append(secret);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_md5(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

}  // namespace voxbridge::control
