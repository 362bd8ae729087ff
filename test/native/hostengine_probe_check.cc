// Checks native/sources/hostengine_probe.cc against real sockets: what listens is Listening, what
// does not (refused TCP port, missing socket file, a socket file nobody listens on) is Absent.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "sources/hostengine_probe.h"

using gt::Listener;
using gt::probeListener;

static int checks = 0;
static int failures = 0;

static void expect(Listener actual, Listener expected, const std::string& what) {
  ++checks;
  if (actual != expected) {
    ++failures;
    std::printf("FAIL %s: got %d, expected %d\n", what.c_str(), static_cast<int>(actual), static_cast<int>(expected));
  }
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/tmp";
  // TCP: a listening loopback port, then the same port closed.
  int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  in.sin_port = 0;
  socklen_t len = sizeof in;
  if (tcp < 0 || ::bind(tcp, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0 || ::listen(tcp, 4) != 0 ||
      ::getsockname(tcp, reinterpret_cast<sockaddr*>(&in), &len) != 0) {
    std::printf("setup failed\n");
    return 2;
  }
  const std::string port = std::to_string(ntohs(in.sin_port));
  expect(probeListener("127.0.0.1:" + port, false, 200), Listener::Listening, "127.0.0.1:" + port);
  expect(probeListener("localhost:" + port, false, 200), Listener::Listening, "localhost:" + port);
  ::close(tcp);
  expect(probeListener("127.0.0.1:" + port, false, 200), Listener::Absent, "closed 127.0.0.1:" + port);
  ++checks;  // IPv6 may be off here: anything but Listening
  if (probeListener("[::1]:" + port, false, 200) == Listener::Listening) {
    ++failures;
    std::printf("FAIL closed [::1]:%s: Listening\n", port.c_str());
  }
  expect(probeListener("no-such-host.invalid:5555", false, 200), Listener::Absent, "a name that does not resolve");

  // Unix: a listening socket, a socket file nobody listens on, no file at all.
  const std::string path = dir + "/nv-hostengine";
  int un = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un ua{};
  ua.sun_family = AF_UNIX;
  std::strncpy(ua.sun_path, path.c_str(), sizeof ua.sun_path - 1);
  ::unlink(path.c_str());
  if (un < 0 || ::bind(un, reinterpret_cast<sockaddr*>(&ua), sizeof ua) != 0 || ::listen(un, 4) != 0) {
    std::printf("setup failed (unix)\n");
    return 2;
  }
  expect(probeListener(path, true, 200), Listener::Listening, path);
  ::close(un);  // the file stays: a stale socket
  expect(probeListener(path, true, 200), Listener::Absent, "stale " + path);
  ::unlink(path.c_str());
  expect(probeListener(path, true, 200), Listener::Absent, "missing " + path);
  expect(probeListener(std::string(200, 'x'), true, 200), Listener::Unknown, "a path too long for sun_path");

  if (failures != 0) {
    std::printf("hostengine probe: %d of %d checks FAILED\n", failures, checks);
    return 1;
  }
  std::printf("hostengine probe: %d checks passed\n", checks);
  return 0;
}
