// Reads that also say when their data arrived: the kernel's receive stamp of the newest
// segment read (SO_TIMESTAMPNS), carried over from the wall clock to the steady clock. The
// session's tick alignment and the load generator's arrival times use it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <span>

namespace voxbridge::net {

/// Asks the kernel to stamp what `fd` receives; false if it refused (errno says why).
bool enable_receive_stamps(int fd);

/// One non-blocking recvmsg() into `buf`; returns what it returns (errno set on -1). When it
/// read data and the socket stamps, `arrival` becomes the moment the newest segment read
/// reached the socket (a stamp from the future or over a second old is ignored: the wall clock
/// was set meanwhile); otherwise `arrival` is left as it was.
ssize_t recv_stamped(int fd, std::span<std::uint8_t> buf,
                     std::chrono::steady_clock::time_point& arrival);

}  // namespace voxbridge::net
