// Whether anything accepts connections where a local nv-hostengine would listen, checked at the
// socket level before DCGM is asked to connect there. DCGM's own client retries a refused
// connection every 50 ms until its timeout has passed (NVIDIA/DCGM dcgmlib/src/
// DcgmClientHandler.cpp lines 222-277), so asking it to connect where nothing listens costs the
// whole timeout; a refused connect() here costs microseconds. Plain POSIX sockets, no DCGM.
#pragma once

#include <string>

namespace gt {

enum class Listener { Absent = 0, Listening = 1, Unknown = -1 };

// `address`: "host:port" (a name, an IPv4 address or "[IPv6]"; without a port, DCGM's default
// 5555) or, with `unixSocket`, a socket path. Absent: refused, no such socket file, or the name
// does not resolve; Listening: a connection was accepted (and closed at once); Unknown: no answer
// within `timeoutMs` or another error (the caller then lets DCGM try).
Listener probeListener(const std::string& address, bool unixSocket, int timeoutMs);

}  // namespace gt
