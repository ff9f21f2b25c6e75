#include "voxbridge/net/stamped_recv.hpp"

#include <sys/socket.h>

#include <cstring>
#include <ctime>

namespace voxbridge::net {

bool enable_receive_stamps(int fd) {
  const int on = 1;
  return ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
}

ssize_t recv_stamped(int fd, std::span<std::uint8_t> buf,
                     std::chrono::steady_clock::time_point& arrival) {
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t r = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  if (r <= 0) return r;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec stamp{};
    std::memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    const auto now = std::chrono::steady_clock::now();
    const auto age = std::chrono::seconds(wall.tv_sec - stamp.tv_sec) +
                     std::chrono::nanoseconds(wall.tv_nsec - stamp.tv_nsec);
    if (age >= std::chrono::nanoseconds::zero() && age < std::chrono::seconds(1)) {
      arrival = now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(age);
    }
  }
  return r;
}

}  // namespace voxbridge::net
