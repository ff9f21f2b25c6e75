// Error texts for people: "connect: Connection refused", not Boost's
// "connect: Connection refused [system:111 at /usr/include/boost/asio/detail/...:93:5 in
// function '...']" that boost::system::system_error::what() gives since Boost 1.79.
#pragma once

#include <boost/system/error_code.hpp>
#include <exception>
#include <string>

namespace voxbridge::net {

/// What an exception says, without the source location and category code a Boost system
/// error appends (its prefix, e.g. "connect: ", is kept). Other exceptions: what().
std::string error_text(const std::exception& e);

/// An error code's message ("Connection refused"); never ec.what() in a log.
inline std::string error_text(const boost::system::error_code& ec) {
  return ec.message();
}

}  // namespace voxbridge::net
