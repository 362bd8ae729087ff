// The control protocol between a Node client (src/inject/) and the injection library's server in a
// CUDA process (server.cc). Plain C++, no sockets here: framing, a small strict JSON reader and
// writer, and the arm request with its bounds, so each can be tested (and fuzzed) on its own.
//
// Framing (both directions): a 12-byte header, then `length` payload bytes.
//   bytes 0-3  magic "GTIJ"
//   byte  4    protocol version (kVersion)
//   byte  5    frame type: 1 JSON (UTF-8 object), 2 record columns, 3 strings
//   bytes 6-7  zero
//   bytes 8-11 payload length, little-endian u32
// A client sends JSON frames of at most kMaxRequestBytes; the server sends JSON, column and string
// frames of at most kMaxReplyBytes. A header with a wrong magic, version or type, or a length over
// the limit, gets an error reply and the connection is closed (the stream cannot be resynchronised);
// a well-framed request that is not valid JSON or not a valid request gets an error reply and the
// connection stays open. Version 1 is the only version; a server that does not speak a client's
// version answers {"op":"error","code":"UNSUPPORTED_VERSION","supported":[1]} in a version-1 frame.
//
// Requests (JSON objects; "op" names them):
//   {"op":"hello"}                     -> {"op":"hello", "v":1, "pid", "processName", "uid", "state", "library"}
//   {"op":"arm", bounds...}            -> {"op":"started", ...}  then, every progressIntervalMs while
//                                         the capture runs, {"op":"progress", ...} and the record
//                                         columns and strings parsed since the last one; at the end
//                                         the last records and {"op":"end", "reason", ...}.
//                                         Or {"op":"error", "code", "message"} (CAPTURE_BUSY,
//                                         CUPTI_BUSY, LIBRARY_NOT_FOUND, ..., BAD_REQUEST).
//   {"op":"stop", "reason":"cancelled"|"timeout"}  -> the capture ends (its "end" follows)
//   {"op":"prewarm"}                   -> {"op":"prewarmed", "libraryPath", "cuptiVersion", "layout",
//                                         "startMs"} once CUPTI was loaded, subscribed, enabled and
//                                         released again (its first enable can stall for seconds),
//                                         or an error as for arm
// The arm bounds: steps + stepRange [+ stepDomain] [+ startAfterSteps], or durationMs; maxBytes,
// maxRecords, bufferBytes, timeoutMs, flushIntervalMs, drainTimeoutMs, kinds {kernels, memcpy,
// memset, runtimeApi, driverApi, nvtx} (see Limits; the same bounds as src/capture/options.ts).
//
// Column frame payload: byte 0 the column (Column), bytes 1-7 zero, then rows of f64 in the
// machine's byte order (client and server share the machine), stride per column as in
// native/capture (kernels 16, memcpys 10, memsets 8, apiCalls 8, ranges 8, steps 2).
// Strings frame payload: u32 LE index of the first string in the capture's table, u32 LE count,
// then per string a u32 LE byte length and the UTF-8 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gt::inject {

inline constexpr char kMagic[4] = {'G', 'T', 'I', 'J'};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderBytes = 12;
inline constexpr uint32_t kMaxRequestBytes = 16 * 1024;
inline constexpr uint32_t kMaxReplyBytes = 1024 * 1024;
inline constexpr size_t kMaxJsonDepth = 8;
inline constexpr size_t kMaxStringBytes = 64 * 1024;  // one string in a strings frame (longer ones are cut)

enum FrameType : uint8_t { kFrameJson = 1, kFrameColumns = 2, kFrameStrings = 3 };
enum Column : uint8_t { kColKernels = 0, kColMemcpys = 1, kColMemsets = 2, kColApiCalls = 3, kColRanges = 4, kColSteps = 5 };

struct Header {
  uint8_t version = 0;
  uint8_t type = 0;
  uint32_t length = 0;
};

enum class HeaderStatus { Ok, NeedMore, BadMagic, BadVersion, BadType, Oversize };
// Reads a header from the first n bytes (NeedMore below kHeaderBytes). BadVersion still fills
// *out (a reply names the versions spoken).
HeaderStatus parseHeader(const uint8_t* data, size_t n, uint32_t maxPayload, Header* out);
const char* headerStatusName(HeaderStatus s);
// The 12 header bytes of a frame of `type` carrying `length` payload bytes.
std::string encodeHeader(uint8_t type, uint32_t length);

// ---- JSON (a strict subset reader: RFC 8259 values, depth <= kMaxJsonDepth, no trailing text) -----
struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;
  // The member named `key` of an object (the last one when repeated), or nullptr.
  const Json* find(const std::string& key) const;
};
bool parseJson(const std::string& text, Json* out, std::string* error);

// A JSON object written member by member.
class JsonWriter {
 public:
  JsonWriter& str(const char* key, const std::string& value);
  JsonWriter& num(const char* key, double value);
  JsonWriter& integer(const char* key, uint64_t value);
  JsonWriter& boolean(const char* key, bool value);
  JsonWriter& null(const char* key);
  JsonWriter& raw(const char* key, const std::string& json);  // an already-encoded value
  std::string done() const { return body_ + "}"; }

 private:
  void key(const char* k);
  std::string body_ = "{";
  bool first_ = true;
};
std::string jsonQuote(const std::string& s);

// ---- the arm request ---------------------------------------------------------------------------
// The bounds a request must fall in (the same as CAPTURE_LIMITS in src/capture/options.ts: a test
// compares them).
struct Limits {
  static constexpr uint64_t kStepsMin = 1, kStepsMax = 100'000, kStepsDefault = 10;
  static constexpr uint64_t kStartAfterStepsMax = 1'000'000;
  static constexpr uint64_t kMaxBytesMin = 1ull << 20, kMaxBytesMax = 4ull << 30, kMaxBytesDefault = 64ull << 20;
  static constexpr uint64_t kMaxRecordsMin = 1, kMaxRecordsMax = 50'000'000, kMaxRecordsDefault = 1'000'000;
  static constexpr uint64_t kBufferBytesMin = 64ull << 10, kBufferBytesMax = 64ull << 20, kBufferBytesDefault = 4ull << 20;
  static constexpr uint64_t kTimeoutMsMin = 100, kTimeoutMsMax = 3'600'000, kTimeoutMsDefault = 60'000;
  static constexpr uint64_t kFlushIntervalMsMin = 10, kFlushIntervalMsMax = 10'000, kFlushIntervalMsDefault = 100;
  static constexpr uint64_t kDrainTimeoutMsMax = 10'000, kDrainTimeoutMsDefault = 1'000;
  static constexpr uint64_t kDurationMsMin = 1, kDurationMsMax = 3'600'000;
  static constexpr size_t kStepRangeLength = 256;
};

struct ArmRequest {
  uint64_t steps = Limits::kStepsDefault;
  uint64_t startAfterSteps = 0;
  bool hasStepRange = false;
  std::string stepRange;
  bool hasStepDomain = false;
  std::string stepDomain;
  uint64_t durationMs = 0;  // 0: steps by NVTX range
  uint64_t maxBytes = Limits::kMaxBytesDefault;
  uint64_t maxRecords = Limits::kMaxRecordsDefault;
  uint64_t bufferBytes = 0;  // 0: min(default, maxBytes / 4)
  uint64_t timeoutMs = Limits::kTimeoutMsDefault;
  uint64_t flushIntervalMs = Limits::kFlushIntervalMsDefault;
  uint64_t drainTimeoutMs = Limits::kDrainTimeoutMsDefault;
  bool kernels = true, memcpy = true, memset = true, runtimeApi = true, driverApi = false, nvtx = true;
};
// Validates an {"op":"arm", ...} object; false with a message naming the member otherwise.
bool parseArm(const Json& request, ArmRequest* out, std::string* error);

}  // namespace gt::inject
