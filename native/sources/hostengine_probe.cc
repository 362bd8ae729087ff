#include "hostengine_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gt {

namespace {

constexpr const char* kDefaultPort = "5555";  // DCGM_HE_PORT_NUMBER, dcgm_structs.h line 289

// A socket closed on every path out.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Non-blocking connect with a bounded wait.
Listener connectTo(int family, const sockaddr* addr, socklen_t length, int timeoutMs) {
  Socket s(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (s.fd() < 0) return Listener::Unknown;
  int rc;
  do {
    rc = ::connect(s.fd(), addr, length);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Listener::Listening;
  if (errno == ECONNREFUSED || errno == ENOENT || errno == ENOTDIR) return Listener::Absent;
  if (errno != EINPROGRESS && errno != EAGAIN) return Listener::Unknown;
  pollfd p{};
  p.fd = s.fd();
  p.events = POLLOUT;
  do {
    rc = ::poll(&p, 1, timeoutMs);
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) return Listener::Unknown;
  int error = 0;
  socklen_t len = sizeof error;
  if (::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) return Listener::Unknown;
  if (error == 0) return Listener::Listening;
  return error == ECONNREFUSED ? Listener::Absent : Listener::Unknown;
}

}  // namespace

Listener probeListener(const std::string& address, bool unixSocket, int timeoutMs) {
  if (unixSocket) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (address.empty() || address.size() >= sizeof un.sun_path) return Listener::Unknown;
    std::memcpy(un.sun_path, address.c_str(), address.size() + 1);
    return connectTo(AF_UNIX, reinterpret_cast<const sockaddr*>(&un), sizeof un, timeoutMs);
  }
  std::string host = address;
  std::string port = kDefaultPort;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) return Listener::Unknown;
    if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
    host = host.substr(1, close - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) return Listener::Absent;
  // "localhost" may name ::1 and 127.0.0.1; nv-hostengine binds 127.0.0.1 by default
  // (HostEngineCommandLine.cpp, --bind-interface): listening on any of them counts.
  Listener result = Listener::Absent;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const Listener l = connectTo(a->ai_family, a->ai_addr, a->ai_addrlen, timeoutMs);
    if (l == Listener::Listening) {
      result = l;
      break;
    }
    if (l == Listener::Unknown) result = l;
  }
  ::freeaddrinfo(found);
  return result;
}

}  // namespace gt
