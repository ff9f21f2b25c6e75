#include "voxbridge/net/error_text.hpp"

#include <boost/system/system_error.hpp>
#include <system_error>

namespace voxbridge::net {

std::string error_text(const std::exception& e) {
  const auto* se = dynamic_cast<const boost::system::system_error*>(&e);
  if (se == nullptr) return e.what();
  std::string text = se->what();
  // what() = [prefix ": "] message " [" category ":" value [" at " location] "]".
  const std::string tail = " [" + se->code().to_string();
  if (const auto at = text.rfind(tail); at != std::string::npos) {
    text.resize(at);
  } else if (text.empty()) {
    text = se->code().message();
  }
  return text;
}

}  // namespace voxbridge::net
