#include "server.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <sstream>
#include <thread>

#include "../capture/capture.h"
#include "protocol.h"

namespace gt::inject {

namespace {

// While a capture runs: how often its owner gets progress and the records parsed since.
constexpr int64_t kProgressIntervalMs = 200;
// Connections served at once (one owns the capture; others may ask hello or be told BUSY).
constexpr size_t kMaxConnections = 8;
// A connection that has sent part of a frame must complete it within this; one that is not the
// capture's owner is closed after this long without a request.
constexpr int64_t kPartialFrameMs = 5'000;
constexpr int64_t kIdleMs = 30'000;
// A reply that cannot be written within this (the client stopped reading) ends the connection.
constexpr int64_t kSendTimeoutMs = 10'000;
// The server stops a capture this long after its timeoutMs even when the client never asks.
constexpr int64_t kTimeoutGraceMs = 2'000;
// The version the library reports in hello (the package version is the Node side's business).
constexpr const char* kLibraryName = "gpu-telemetry-inject/1";

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string readSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string processName() {
  std::string comm = readSmallFile("/proc/self/comm");
  while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\r')) comm.pop_back();
  return comm;
}

// ---- logging ---------------------------------------------------------------------------------------
std::mutex gLogMutex;
int64_t gLogWindowStart = 0;
int gLogInWindow = 0;
uint64_t gLogSuppressed = 0;
constexpr int kLogPerMinute = 20;

bool quiet() {
  const char* q = std::getenv("GPU_TELEMETRY_INJECT_QUIET");
  return q != nullptr && std::strcmp(q, "1") == 0;
}

}  // namespace

void log(bool error, const char* format, ...) {
  if (!error && quiet()) return;
  char text[768];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  std::lock_guard<std::mutex> lock(gLogMutex);
  const int64_t now = nowMs();
  if (now - gLogWindowStart >= 60'000) {
    gLogWindowStart = now;
    gLogInWindow = 0;
  }
  if (gLogInWindow >= kLogPerMinute) {
    ++gLogSuppressed;
    return;
  }
  ++gLogInWindow;
  if (gLogSuppressed > 0) {
    std::fprintf(stderr, "gpu-telemetry-inject[%d]: (%llu messages suppressed)\n", static_cast<int>(getpid()),
                 static_cast<unsigned long long>(gLogSuppressed));
    gLogSuppressed = 0;
  }
  std::fprintf(stderr, "gpu-telemetry-inject[%d]: %s\n", static_cast<int>(getpid()), text);
}

// ---- the socket folder ---------------------------------------------------------------------------

SocketDir openSocketDir() {
  SocketDir d;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] == '/') {
    d.path = std::string(xdg);
    while (d.path.size() > 1 && d.path.back() == '/') d.path.pop_back();
    d.path += "/gpu-telemetry";
  } else {
    d.path = "/tmp/gpu-telemetry-" + std::to_string(geteuid());
  }
  if (::mkdir(d.path.c_str(), 0700) != 0 && errno != EEXIST) {
    d.error = "cannot create " + d.path + ": " + std::strerror(errno);
    return d;
  }
  // O_NOFOLLOW: a symlink planted in /tmp under our folder's name is refused, never followed.
  const int fd = ::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    d.error = "cannot open " + d.path + " (" + std::strerror(errno) + "): it must be a directory, not a symlink";
    return d;
  }
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  ::close(fd);
  if (rc != 0) {
    d.error = "cannot stat " + d.path + ": " + std::strerror(errno);
    return d;
  }
  if (!S_ISDIR(st.st_mode)) {
    d.error = d.path + " is not a directory";
    return d;
  }
  if (st.st_uid != geteuid()) {
    d.error = d.path + " belongs to uid " + std::to_string(st.st_uid) + ", not to this process's uid " + std::to_string(geteuid()) +
              ": refusing to put a control socket there";
    return d;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    d.error = d.path + " has mode " + mode + ": it must be 0700 (no group or other access); refusing to put a control socket there";
    return d;
  }
  d.ok = true;
  return d;
}

// ---- where CUPTI is -------------------------------------------------------------------------------

std::vector<std::string> cuptiCandidates() {
  if (const char* env = std::getenv("GPU_TELEMETRY_CUPTI_LIB"); env != nullptr && env[0] != '\0') return {env};
  std::vector<std::string> out;
  auto add = [&](const std::string& p) {
    if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  // What this process has mapped: a libcupti already loaded, and the CUDA runtime's folders.
  std::vector<std::string> loadedCupti, cudartDirs;
  {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      const size_t slash = line.find('/');
      if (slash == std::string::npos) continue;
      const std::string path = line.substr(slash);
      const size_t base = path.rfind('/');
      const std::string file = path.substr(base + 1);
      if (file.rfind("libcupti.so", 0) == 0) {
        if (std::find(loadedCupti.begin(), loadedCupti.end(), path) == loadedCupti.end()) loadedCupti.push_back(path);
      } else if (file.rfind("libcudart.so", 0) == 0) {
        const std::string dir = path.substr(0, base);
        if (std::find(cudartDirs.begin(), cudartDirs.end(), dir) == cudartDirs.end()) cudartDirs.push_back(dir);
      }
    }
  }
  for (const std::string& p : loadedCupti) add(p);
  if (const char* nvtx = std::getenv("NVTX_INJECTION64_PATH"); nvtx != nullptr && nvtx[0] != '\0') {
    const std::string p = nvtx;
    const std::string file = p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
    if (file.rfind("libcupti", 0) == 0) add(p);
  }
  add("libcupti.so");
  for (const std::string& dir : cudartDirs) {
    // The toolkit (lib64/ and extras/CUPTI/lib64/), a CUDA 12 pip layout (nvidia/cuda_runtime/lib
    // beside nvidia/cuda_cupti/lib) and a CUDA 13 one (everything in nvidia/cu13/lib).
    for (const std::string& d : {dir, dir + "/../extras/CUPTI/lib64", dir + "/../../cuda_cupti/lib"}) {
      std::vector<std::string> found;
      if (DIR* h = ::opendir(d.c_str())) {
        while (dirent* e = ::readdir(h)) {
          const std::string name = e->d_name;
          if (name.rfind("libcupti.so", 0) == 0) found.push_back(d + "/" + name);
        }
        ::closedir(h);
      }
      std::sort(found.rbegin(), found.rend());
      for (const std::string& f : found) add(f);
    }
  }
  for (const char* p : {"libcupti.so.13", "libcupti.so.12", "/usr/local/cuda/lib64/libcupti.so",
                        "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so"}) {
    add(p);
  }
  return out;
}

// ---- the server -----------------------------------------------------------------------------------

namespace {

struct Conn {
  int fd = -1;
  uid_t uid = 0;
  pid_t peerPid = 0;
  std::string in;             // bytes received, not yet a whole frame
  int64_t partialSince = 0;   // when `in` became non-empty (0: empty)
  int64_t lastRequest = 0;
  bool closing = false;
};

struct Capture {
  std::shared_ptr<capture::Engine> engine;
  uint64_t serial = 0;
  int ownerFd = -1;  // -1 once the client that armed it is gone (its records are then dropped)
  ArmRequest request;
  bool prewarm = false;  // a pre-warm (load, subscribe, enable and disable): no records, answered at its end
  bool started = false;
  int64_t armedAt = 0;
  int64_t durationDeadline = 0;  // 0: none (or not started yet)
  int64_t timeoutDeadline = 0;
  int64_t nextProgress = 0;
  bool stopAsked = false;
};

struct EngineEvent {
  uint64_t serial;
  capture::Engine::Event event;
  std::string reason;
};

class Server {
 public:
  bool start();
  void run();
  // At exit: the socket's name goes (best effort; a killed process's is cleaned up by the lister).
  void unlinkSocket();
  // In a forked child: this server's thread did not come along; close the descriptors the child
  // inherited (a client must see its connection end when the parent does) and forget them. Only
  // plain ints are read: the parent's thread may have been mid-way through changing anything else.
  void forgetInChild();

  // From the capture thread.
  void post(uint64_t serial, capture::Engine::Event event, const std::string& reason) {
    {
      std::lock_guard<std::mutex> lock(eventsMutex_);
      events_.push_back({serial, event, reason});
    }
    const char b = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeWrite_, &b, 1);  // a full pipe already means "wake up"
  }

 private:
  void accept();
  void readFrom(Conn& c);
  void handleFrame(Conn& c, const Header& h, const std::string& payload);
  void handleRequest(Conn& c, const Json& request);
  void arm(Conn& c, const Json& request);
  void prewarm(Conn& c);
  bool launch(Conn& c, const ArmRequest& req, bool prewarm);
  void onEvents();
  void onStarted();
  void onStopped(const std::string& reason);
  void tick(int64_t now);
  void sendRecords(capture::Result& r);
  std::string progressJson();
  std::string helloJson();
  bool send(int fd, uint8_t type, const std::string& payload);
  bool sendJson(int fd, const std::string& json) { return send(fd, kFrameJson, json); }
  bool sendError(int fd, const char* code, const std::string& message);
  void ownerGone();
  void closeConn(Conn& c);
  Conn* find(int fd);

  std::string dir_, path_, name_;
  char pathBytes_[sizeof(sockaddr_un::sun_path)] = {};  // path_, for unlink() at exit (no allocation)
  int listenFd_ = -1, wakeRead_ = -1, wakeWrite_ = -1;
  std::atomic<int> connFds_[kMaxConnections];  // the open connections' fds, for forgetInChild
  pid_t pid_ = 0;
  std::deque<Conn> conns_;
  std::unique_ptr<Capture> capture_;
  uint64_t serial_ = 0;
  std::mutex eventsMutex_;
  std::deque<EngineEvent> events_;
};

Server* gServer = nullptr;  // immortal once started (the thread and the capture callbacks use it)
std::mutex gStartMutex;

void atExit() {
  if (gServer != nullptr) gServer->unlinkSocket();
}

void beforeFork() { gStartMutex.lock(); }
void afterForkParent() { gStartMutex.unlock(); }
void afterForkChild() {
  // The child has one thread. The parent's server (and its socket) stays the parent's.
  gStartMutex.unlock();
  new (&gLogMutex) std::mutex();  // the parent's server thread may have held it at the fork
  if (gServer != nullptr) {
    gServer->forgetInChild();
    gServer = nullptr;  // leaked on purpose: the child's copy of the parent's server
  }
}

bool Server::start() {
  for (auto& fd : connFds_) fd = -1;
  pid_ = getpid();
  name_ = processName();
  SocketDir d = openSocketDir();
  if (!d.ok) {
    log(true, "staying dormant without a control socket: %s", d.error.c_str());
    return false;
  }
  dir_ = d.path;
  path_ = dir_ + "/" + std::to_string(pid_) + ".sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    log(true, "staying dormant: the control socket path %s is longer than a unix socket allows (%zu bytes)", path_.c_str(),
        sizeof addr.sun_path - 1);
    return false;
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  std::memcpy(pathBytes_, path_.c_str(), path_.size() + 1);
  listenFd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listenFd_ < 0) {
    log(true, "staying dormant: socket(): %s", std::strerror(errno));
    return false;
  }
  // A socket of this pid left by an earlier process (killed, pid reused): ours now, in our folder.
  ::unlink(path_.c_str());
  const mode_t old = ::umask(077);
  const int bound = ::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (bound != 0 || ::listen(listenFd_, 8) != 0) {
    log(true, "staying dormant: cannot listen on %s: %s", path_.c_str(), std::strerror(errno));
    ::close(listenFd_);
    listenFd_ = -1;
    return false;
  }
  ::chmod(path_.c_str(), 0600);
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC | O_NONBLOCK) != 0) {
    log(true, "staying dormant: pipe(): %s", std::strerror(errno));
    ::close(listenFd_);
    ::unlink(path_.c_str());
    listenFd_ = -1;
    return false;
  }
  wakeRead_ = pipeFds[0];
  wakeWrite_ = pipeFds[1];
  std::thread([this] {
    pthread_setname_np(pthread_self(), "gt-inject");
    run();
  }).detach();
  log(false, "dormant; control socket %s (arm with: gpu-telemetry capture --pid %d ...)", path_.c_str(), static_cast<int>(pid_));
  return true;
}

void Server::unlinkSocket() {
  if (listenFd_ >= 0 && getpid() == pid_) ::unlink(pathBytes_);
}

void Server::forgetInChild() {
  for (int fd : {listenFd_, wakeRead_, wakeWrite_}) {
    if (fd >= 0) ::close(fd);
  }
  for (auto& fd : connFds_) {
    const int v = fd.load();
    if (v >= 0) ::close(v);
  }
}

Conn* Server::find(int fd) {
  for (Conn& c : conns_) {
    if (c.fd == fd) return &c;
  }
  return nullptr;
}

void Server::run() {
  std::vector<pollfd> fds;
  for (;;) {
    const int64_t now = nowMs();
    // The next deadline: nothing at all while dormant with no connection (poll sleeps for good).
    int64_t next = -1;
    auto consider = [&](int64_t at) {
      if (at > 0 && (next < 0 || at < next)) next = at;
    };
    if (capture_) {
      if (capture_->started) consider(capture_->nextProgress);
      consider(capture_->durationDeadline);
      consider(capture_->timeoutDeadline);
    }
    for (const Conn& c : conns_) {
      if (c.partialSince > 0) consider(c.partialSince + kPartialFrameMs);
      else if (!(capture_ && capture_->ownerFd == c.fd)) consider(c.lastRequest + kIdleMs);
    }
    const int timeout = next < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(next - now, 60'000)));
    fds.clear();
    fds.push_back({listenFd_, POLLIN, 0});
    fds.push_back({wakeRead_, POLLIN, 0});
    for (const Conn& c : conns_) fds.push_back({c.fd, POLLIN, 0});
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      log(true, "poll(): %s; the control server stops", std::strerror(errno));
      return;
    }
    if (n > 0) {
      if (fds[1].revents & POLLIN) {
        char buf[64];
        while (::read(wakeRead_, buf, sizeof buf) > 0) {
        }
      }
      onEvents();
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        if (Conn* c = find(fds[i].fd)) readFrom(*c);
      }
      if (fds[0].revents & POLLIN) accept();
    } else {
      onEvents();
    }
    tick(nowMs());
    for (Conn& c : conns_) {
      if (c.closing) closeConn(c);
    }
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.fd < 0; }), conns_.end());
  }
}

void Server::accept() {
  for (;;) {
    const int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN: none left (or a transient error: the next poll retries)
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log(true, "refused a connection: its credentials cannot be read (SO_PEERCRED: %s)", std::strerror(errno));
      ::close(fd);
      continue;
    }
    // Only this process's own user, or root, may talk to it: a capture reads everything the
    // process's GPU work does. (The 0700 folder already keeps others away; this holds even if its
    // mode was loosened after the socket was made.)
    if (cred.uid != geteuid() && cred.uid != 0) {
      log(true, "refused a connection from pid %d uid %u: only uid %u or root may arm this process", static_cast<int>(cred.pid),
          static_cast<unsigned>(cred.uid), static_cast<unsigned>(geteuid()));
      sendError(fd, "PERMISSION_DENIED",
                "only the user this process runs as (uid " + std::to_string(geteuid()) + ") or root may arm it");
      ::close(fd);
      continue;
    }
    if (conns_.size() >= kMaxConnections) {
      log(true, "refused a connection from pid %d: %zu connections already open", static_cast<int>(cred.pid), conns_.size());
      sendError(fd, "TOO_MANY_CONNECTIONS", "this process already serves " + std::to_string(conns_.size()) + " connections");
      ::close(fd);
      continue;
    }
    for (auto& slot : connFds_) {
      int empty = -1;
      if (slot.compare_exchange_strong(empty, fd)) break;
    }
    Conn c;
    c.fd = fd;
    c.uid = cred.uid;
    c.peerPid = cred.pid;
    c.lastRequest = nowMs();
    conns_.push_back(std::move(c));
  }
}

void Server::readFrom(Conn& c) {
  if (c.closing) return;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n == 0) {
      c.closing = true;  // the client closed its end
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) c.closing = true;
      break;
    }
    if (c.in.empty()) c.partialSince = nowMs();
    c.in.append(buf, static_cast<size_t>(n));
    // Whole frames out of what arrived.
    while (!c.closing && !c.in.empty()) {
      Header h;
      const HeaderStatus s = parseHeader(reinterpret_cast<const uint8_t*>(c.in.data()), c.in.size(), kMaxRequestBytes, &h);
      if (s == HeaderStatus::NeedMore) break;
      if (s != HeaderStatus::Ok) {
        // The stream cannot be resynchronised: say why, log it, hang up.
        log(true, "closed a connection from pid %d: %s", static_cast<int>(c.peerPid), headerStatusName(s));
        if (s == HeaderStatus::BadVersion) {
          send(c.fd, kFrameJson,
               JsonWriter().str("op", "error").str("code", "UNSUPPORTED_VERSION")
                   .str("message", "this library speaks protocol version 1, not " + std::to_string(h.version))
                   .raw("supported", "[1]").done());
        } else if (s == HeaderStatus::Oversize) {
          sendError(c.fd, "OVERSIZE", "a request frame of " + std::to_string(h.length) + " bytes is larger than the limit of " +
                                          std::to_string(kMaxRequestBytes));
        } else {
          sendError(c.fd, "BAD_FRAME", headerStatusName(s));
        }
        c.closing = true;
        break;
      }
      if (c.in.size() < kHeaderBytes + h.length) break;
      const std::string payload = c.in.substr(kHeaderBytes, h.length);
      c.in.erase(0, kHeaderBytes + h.length);
      c.partialSince = c.in.empty() ? 0 : nowMs();
      c.lastRequest = nowMs();
      handleFrame(c, h, payload);
    }
    if (c.closing) break;
  }
}

void Server::handleFrame(Conn& c, const Header& h, const std::string& payload) {
  if (h.type != kFrameJson) {
    log(true, "pid %d sent a frame of type %u: requests are JSON frames", static_cast<int>(c.peerPid), h.type);
    sendError(c.fd, "BAD_REQUEST", "requests are JSON frames (type 1)");
    return;
  }
  Json request;
  std::string error;
  if (!parseJson(payload, &request, &error)) {
    log(true, "pid %d sent malformed JSON: %s", static_cast<int>(c.peerPid), error.c_str());
    sendError(c.fd, "BAD_JSON", error);
    return;
  }
  handleRequest(c, request);
}

void Server::handleRequest(Conn& c, const Json& request) {
  const Json* op = request.find("op");
  const std::string name = op != nullptr && op->type == Json::Type::String ? op->string : "";
  if (name == "hello") {
    sendJson(c.fd, helloJson());
  } else if (name == "arm") {
    arm(c, request);
  } else if (name == "prewarm") {
    prewarm(c);
  } else if (name == "stop") {
    if (!capture_ || capture_->ownerFd != c.fd) {
      sendError(c.fd, "NOT_OWNER", "no capture armed over this connection");
      return;
    }
    const Json* r = request.find("reason");
    const std::string reason = r != nullptr && r->type == Json::Type::String && r->string == "timeout" ? "timeout" : "cancelled";
    capture_->stopAsked = true;
    capture_->engine->stop(reason);
  } else {
    log(true, "pid %d sent an unknown request \"%.64s\"", static_cast<int>(c.peerPid), name.c_str());
    sendError(c.fd, "BAD_REQUEST", name.empty() ? "a request needs \"op\": hello, arm, prewarm or stop" : "unknown op \"" + name.substr(0, 64) + "\"");
  }
}

std::string Server::helloJson() {
  std::string state = "dormant";
  if (capture_) state = capture_->started ? capture::stateName(capture_->engine->progress().state) : "starting";
  return JsonWriter()
      .str("op", "hello")
      .integer("v", kVersion)
      .integer("pid", static_cast<uint64_t>(pid_))
      .str("processName", name_)
      .integer("uid", geteuid())
      .str("state", state)
      .str("library", kLibraryName)
      .done();
}

void Server::arm(Conn& c, const Json& request) {
  ArmRequest req;
  std::string error;
  if (!parseArm(request, &req, &error)) {
    log(true, "pid %d sent a bad arm request: %s", static_cast<int>(c.peerPid), error.c_str());
    sendError(c.fd, "BAD_REQUEST", error);
    return;
  }
  if (launch(c, req, false)) {
    log(false, "armed by pid %d: %s", static_cast<int>(c.peerPid),
        req.hasStepRange ? ("steps=" + std::to_string(req.steps) + " stepRange=" + req.stepRange.substr(0, 64)).c_str()
                         : ("durationMs=" + std::to_string(req.durationMs)).c_str());
  }
}

// Pays CUPTI's start-up (loading it, subscribing, the first enable, which can stall for seconds)
// ahead of a capture, as capture.prewarm() does in process: answered {"op":"prewarmed", ...} once
// it is over, with nothing left subscribed or enabled.
void Server::prewarm(Conn& c) {
  ArmRequest req;
  req.durationMs = 1;
  req.maxBytes = 4ull << 20;
  req.bufferBytes = 1ull << 20;
  req.drainTimeoutMs = 0;
  if (launch(c, req, true)) log(false, "pre-warming CUPTI for pid %d", static_cast<int>(c.peerPid));
}

bool Server::launch(Conn& c, const ArmRequest& req, bool prewarm) {
  if (capture_) {
    sendError(c.fd, "CAPTURE_BUSY", "a capture is already live in this process (pid " + std::to_string(pid_) +
                                        "): one at a time (CUPTI has one subscriber); wait for it to end");
    return false;
  }
  capture::Options o;
  o.cuptiCandidates = cuptiCandidates();
  o.maxBytes = req.maxBytes;
  o.bufferBytes = req.bufferBytes;
  o.maxRecords = req.maxRecords;
  o.steps = req.durationMs != 0 ? Limits::kStepsMax : req.steps;
  o.startAfterSteps = req.startAfterSteps;
  o.hasStepRange = req.hasStepRange;
  o.stepRange = req.stepRange;
  o.hasStepDomain = req.hasStepDomain;
  o.stepDomain = req.stepDomain;
  o.kinds.kernels = req.kernels;
  o.kinds.memcpy = req.memcpy;
  o.kinds.memset = req.memset;
  o.kinds.runtimeApi = req.runtimeApi;
  o.kinds.driverApi = req.driverApi;
  o.kinds.nvtx = req.nvtx;
  o.flushIntervalMs = static_cast<int64_t>(req.flushIntervalMs);
  o.drainTimeoutMs = static_cast<int64_t>(req.drainTimeoutMs);
  o.prewarm = prewarm;
  const uint64_t serial = ++serial_;
  auto engine = capture::Engine::create(std::move(o), [this, serial](capture::Engine::Event e, const std::string& reason) {
    post(serial, e, reason);
  });
  const capture::StartResult r = engine->start();
  if (!r.ok) {
    engine->close();
    sendError(c.fd, r.code.c_str(), r.message);
    return false;
  }
  capture_ = std::make_unique<Capture>();
  capture_->engine = std::move(engine);
  capture_->serial = serial;
  capture_->ownerFd = c.fd;
  capture_->request = req;
  capture_->prewarm = prewarm;
  capture_->armedAt = nowMs();
  capture_->timeoutDeadline = capture_->armedAt + static_cast<int64_t>(req.timeoutMs) + kTimeoutGraceMs;
  return true;
}

void Server::onEvents() {
  std::deque<EngineEvent> events;
  {
    std::lock_guard<std::mutex> lock(eventsMutex_);
    events.swap(events_);
  }
  for (const EngineEvent& e : events) {
    if (!capture_ || e.serial != capture_->serial) continue;  // an engine we no longer follow
    switch (e.event) {
      case capture::Engine::Event::Started: onStarted(); break;
      case capture::Engine::Event::Failed: {
        capture::StartResult r;
        capture_->engine->startResult(&r);
        if (capture_->ownerFd >= 0) {
          JsonWriter w;
          w.str("op", "error").str("code", r.code.empty() ? "CUPTI_ERROR" : r.code).str("message", r.message);
          if (r.hasVendorCode) w.integer("vendorCode", static_cast<uint64_t>(r.vendorCode)).str("vendorMessage", r.vendorMessage);
          if (!r.libraryPath.empty()) w.str("libraryPath", r.libraryPath);
          if (r.cuptiVersion != 0) w.integer("cuptiVersion", r.cuptiVersion);
          sendJson(capture_->ownerFd, w.done());
        }
        log(true, "a capture could not start: %s: %s", r.code.c_str(), r.message.c_str());
        capture_->engine->close();
        capture_.reset();
        break;
      }
      case capture::Engine::Event::Stopped: onStopped(e.reason); break;
    }
    if (!capture_) break;  // later events were for the capture that just ended
  }
}

void Server::onStarted() {
  Capture& cap = *capture_;
  if (cap.prewarm) return;  // answered when it has stopped again
  capture::StartResult r;
  cap.engine->startResult(&r);
  capture::Result meta = cap.engine->drain();  // baseNs, layout, … (and any rows already parsed)
  const int64_t now = nowMs();
  cap.started = true;
  cap.nextProgress = now + kProgressIntervalMs;
  if (cap.request.durationMs != 0) cap.durationDeadline = now + static_cast<int64_t>(cap.request.durationMs);
  if (cap.ownerFd < 0) return;
  const std::string json = JsonWriter()
                               .str("op", "started")
                               .integer("v", kVersion)
                               .integer("pid", static_cast<uint64_t>(pid_))
                               .str("processName", name_)
                               .str("libraryPath", r.libraryPath)
                               .integer("cuptiVersion", r.cuptiVersion)
                               .str("layout", meta.layout)
                               .boolean("simulated", meta.simulated)
                               .str("subscriberMode", r.sharedSubscriber ? "shared" : "exclusive")
                               .num("startMs", r.startMs)
                               .str("baseNs", meta.baseNs)
                               .num("clockNs", cap.engine->timestamp())
                               .str("state", capture::stateName(cap.engine->progress().state))
                               .done();
  if (!sendJson(cap.ownerFd, json)) {
    ownerGone();
    return;
  }
  sendRecords(meta);
}

void Server::onStopped(const std::string& reason) {
  Capture& cap = *capture_;
  if (cap.prewarm) {
    capture::StartResult r;
    cap.engine->startResult(&r);
    if (cap.ownerFd >= 0) {
      sendJson(cap.ownerFd, JsonWriter()
                                .str("op", "prewarmed")
                                .str("libraryPath", r.libraryPath)
                                .integer("cuptiVersion", r.cuptiVersion)
                                .str("layout", cap.engine->drain().layout)
                                .num("startMs", r.startMs)
                                .str("subscriberMode", r.sharedSubscriber ? "shared" : "exclusive")
                                .done());
    }
    log(false, "CUPTI pre-warmed (%.0f ms)", r.startMs);
    cap.engine->close();
    capture_.reset();
    return;
  }
  if (cap.ownerFd >= 0) {
    capture::Result r = cap.engine->drain();
    sendRecords(r);
    if (cap.ownerFd >= 0) {
      const std::string json = JsonWriter()
                                   .str("op", "end")
                                   .str("reason", r.reason.empty() ? reason : r.reason)
                                   .boolean("truncated", r.truncated)
                                   .integer("droppedByCupti", r.droppedByCupti)
                                   .integer("droppedByUs", r.droppedByUs)
                                   .integer("droppedIncomplete", r.droppedIncomplete)
                                   .integer("peakBytes", r.peakBytes)
                                   .integer("buffersCompleted", r.buffersCompleted)
                                   .str("baseNs", r.baseNs)
                                   .str("layout", r.layout)
                                   .integer("cuptiVersion", r.cuptiVersion)
                                   .str("libraryPath", r.libraryPath)
                                   .boolean("simulated", r.simulated)
                                   .str("subscriberMode", r.sharedSubscriber ? "shared" : "exclusive")
                                   .done();
      sendJson(cap.ownerFd, json);
    }
  }
  log(false, "capture ended: %s", reason.c_str());
  cap.engine->close();
  capture_.reset();
}

std::string Server::progressJson() {
  const capture::Progress p = capture_->engine->progress();
  return JsonWriter()
      .str("op", "progress")
      .str("state", capture::stateName(p.state))
      .integer("steps", p.steps)
      .integer("records", p.records)
      .integer("bytes", p.bytes)
      .integer("droppedByCupti", p.droppedByCupti)
      .integer("droppedByUs", p.droppedByUs)
      .integer("droppedIncomplete", p.droppedIncomplete)
      .done();
}

void Server::tick(int64_t now) {
  for (Conn& c : conns_) {
    if (c.closing) continue;
    if (c.partialSince > 0 && now - c.partialSince >= kPartialFrameMs) {
      log(true, "closed a connection from pid %d: a frame was left incomplete for %lld ms", static_cast<int>(c.peerPid),
          static_cast<long long>(kPartialFrameMs));
      sendError(c.fd, "BAD_FRAME", "incomplete frame (timed out)");
      c.closing = true;
    } else if (c.partialSince == 0 && !(capture_ && capture_->ownerFd == c.fd) && now - c.lastRequest >= kIdleMs) {
      c.closing = true;  // idle, owns nothing
    }
  }
  if (!capture_) return;
  Capture& cap = *capture_;
  if (!cap.stopAsked && cap.durationDeadline > 0 && now >= cap.durationDeadline) {
    cap.stopAsked = true;
    cap.engine->stop("duration");
  }
  if (!cap.stopAsked && now >= cap.timeoutDeadline) {
    cap.stopAsked = true;
    cap.engine->stop("timeout");
  }
  if (cap.started && cap.ownerFd >= 0 && now >= cap.nextProgress) {
    cap.nextProgress = now + kProgressIntervalMs;
    // Progress is read before the drain and sent after its rows: every step or record a progress
    // message counts has reached the client before it (a target that dies next leaves them there).
    const std::string progress = progressJson();
    capture::Result r = cap.engine->drain();
    sendRecords(r);
    if (capture_ && capture_->ownerFd >= 0 && !sendJson(capture_->ownerFd, progress)) ownerGone();
  }
}

void Server::sendRecords(capture::Result& r) {
  if (!capture_ || capture_->ownerFd < 0) return;
  const int fd = capture_->ownerFd;
  struct Named {
    Column id;
    capture::Columns* c;
  };
  const Named columns[] = {{kColKernels, r.kernels.get()}, {kColMemcpys, r.memcpys.get()}, {kColMemsets, r.memsets.get()},
                           {kColApiCalls, r.apiCalls.get()}, {kColRanges, r.ranges.get()}, {kColSteps, r.steps.get()}};
  bool ok = true;
  // Strings first: the rows name them by index.
  size_t i = 0;
  while (ok && i < r.strings.size()) {
    std::string payload(8, '\0');
    const uint32_t first = static_cast<uint32_t>(r.stringBase + i);
    uint32_t count = 0;
    while (i < r.strings.size()) {
      const std::string& s = r.strings[i];
      const uint32_t len = static_cast<uint32_t>(std::min(s.size(), kMaxStringBytes));
      if (count > 0 && payload.size() + 4 + len > kMaxReplyBytes) break;
      char lenBytes[4];
      for (int b = 0; b < 4; ++b) lenBytes[b] = static_cast<char>((len >> (8 * b)) & 0xff);
      payload.append(lenBytes, 4);
      payload.append(s.data(), len);
      ++count;
      ++i;
    }
    for (int b = 0; b < 4; ++b) {
      payload[b] = static_cast<char>((first >> (8 * b)) & 0xff);
      payload[4 + b] = static_cast<char>((count >> (8 * b)) & 0xff);
    }
    ok = send(fd, kFrameStrings, payload);
  }
  for (const Named& col : columns) {
    if (col.c == nullptr || col.c->rows() == 0) continue;
    const size_t stride = col.c->stride();
    col.c->drainChunks([&](const double* rows, size_t n) {
      // A chunk is 64 KiB: one frame each.
      if (!ok) return;
      std::string payload(8, '\0');
      payload[0] = static_cast<char>(col.id);
      payload.append(reinterpret_cast<const char*>(rows), n * stride * sizeof(double));
      ok = send(fd, kFrameColumns, payload);
    });
  }
  if (!ok) ownerGone();
}

bool Server::send(int fd, uint8_t type, const std::string& payload) {
  if (fd < 0) return false;
  const std::string frame = encodeHeader(type, static_cast<uint32_t>(payload.size())) + payload;
  size_t off = 0;
  const int64_t deadline = nowMs() + kSendTimeoutMs;
  while (off < frame.size()) {
    // MSG_NOSIGNAL: a client that hung up must never raise SIGPIPE in the target.
    const ssize_t n = ::send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int64_t left = deadline - nowMs();
      if (left <= 0) return false;
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(left));
      continue;
    }
    return false;
  }
  return true;
}

bool Server::sendError(int fd, const char* code, const std::string& message) {
  return sendJson(fd, JsonWriter().str("op", "error").str("code", code).str("message", message).done());
}

// The client that armed the capture is gone (hung up, or stopped reading): the capture stops and
// its records are dropped when it ends.
void Server::ownerGone() {
  if (!capture_) return;
  if (Conn* c = find(capture_->ownerFd)) c->closing = true;
  capture_->ownerFd = -1;
  if (!capture_->stopAsked) {
    capture_->stopAsked = true;
    capture_->engine->stop("cancelled");
  }
}

void Server::closeConn(Conn& c) {
  if (c.fd < 0) return;
  if (capture_ && capture_->ownerFd == c.fd) {
    log(false, "the client that armed the capture (pid %d) hung up: the capture stops", static_cast<int>(c.peerPid));
    ownerGone();
  }
  for (auto& slot : connFds_) {
    int mine = c.fd;
    if (slot.compare_exchange_strong(mine, -1)) break;
  }
  ::close(c.fd);
  c.fd = -1;
}

}  // namespace

bool startServer() {
  std::lock_guard<std::mutex> lock(gStartMutex);
  static bool handlersInstalled = false;
  if (gServer != nullptr) return true;
  if (!handlersInstalled) {
    handlersInstalled = true;
    pthread_atfork(beforeFork, afterForkParent, afterForkChild);
    std::atexit(atExit);
  }
  auto* server = new Server();
  if (!server->start()) {
    delete server;
    return false;
  }
  gServer = server;
  return true;
}

}  // namespace gt::inject
