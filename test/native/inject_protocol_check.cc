// Checks native/inject/protocol.cc on its own (no sockets): framing, the JSON reader, the arm
// request's bounds, and a randomized pass over hostile input (every input must be answered, never
// crash). Built with the sanitizers by test/inject-protocol.test.ts; prints "ok" and a count.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "../../native/inject/protocol.h"

using namespace gt::inject;

static int failures = 0;
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                       \
    }                                                                   \
  } while (0)

static HeaderStatus header(const std::string& bytes, Header* h) {
  return parseHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), kMaxRequestBytes, h);
}

static bool arm(const std::string& json, ArmRequest* out, std::string* error) {
  Json j;
  if (!parseJson(json, &j, error)) return false;
  return parseArm(j, out, error);
}

int main() {
  Header h;
  // Framing.
  const std::string good = encodeHeader(kFrameJson, 5) + "hello";
  CHECK(good.size() == kHeaderBytes + 5);
  CHECK(header(good, &h) == HeaderStatus::Ok && h.type == kFrameJson && h.length == 5 && h.version == kVersion);
  CHECK(header(good.substr(0, 11), &h) == HeaderStatus::NeedMore);
  CHECK(header("GT", &h) == HeaderStatus::NeedMore);
  CHECK(header("hello\n", &h) == HeaderStatus::BadMagic);  // at once, without 12 bytes
  CHECK(header("G", &h) == HeaderStatus::NeedMore);
  CHECK(header("X", &h) == HeaderStatus::BadMagic);
  std::string v2 = good;
  v2[4] = 2;
  CHECK(header(v2, &h) == HeaderStatus::BadVersion && h.version == 2);
  std::string type9 = good;
  type9[5] = 9;
  CHECK(header(type9, &h) == HeaderStatus::BadType);
  std::string reserved = good;
  reserved[6] = 1;
  CHECK(header(reserved, &h) == HeaderStatus::BadType);
  CHECK(header(encodeHeader(kFrameJson, kMaxRequestBytes), &h) == HeaderStatus::Ok);
  CHECK(header(encodeHeader(kFrameJson, kMaxRequestBytes + 1), &h) == HeaderStatus::Oversize);
  CHECK(header(encodeHeader(kFrameJson, 0xffffffffu), &h) == HeaderStatus::Oversize);

  // JSON.
  Json j;
  std::string error;
  CHECK(parseJson("{\"op\":\"arm\",\"steps\":10,\"kinds\":{\"nvtx\":true},\"a\":[1,2,null],\"s\":\"\\u00e9\\ud83d\\ude00\"}", &j, &error));
  CHECK(j.find("op") && j.find("op")->string == "arm");
  CHECK(j.find("s") && j.find("s")->string == "\xc3\xa9\xf0\x9f\x98\x80");
  for (const char* bad : {"", "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "{\"a\":01}", "{\"a\":1e}", "{\"a\":\"\\x\"}",
                          "{\"a\":\"\\ud83d\"}", "{\"a\":\"\x01\"}", "{} x", "nul", "{\"a\":1e999}", "\"unterminated",
                          "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]"}) {
    error.clear();
    CHECK(!parseJson(bad, &j, &error) && !error.empty());
  }
  // Writer round trip, control characters escaped.
  const std::string written = JsonWriter().str("k", std::string("a\"b\\\n\x01", 6)).integer("n", 42).num("x", 0.5).boolean("b", true).null("z").done();
  CHECK(parseJson(written, &j, &error));
  CHECK(j.find("k")->string == std::string("a\"b\\\n\x01", 6) && j.find("n")->number == 42 && j.find("b")->boolean);

  // Arm requests.
  ArmRequest r;
  CHECK(arm("{\"op\":\"arm\",\"steps\":10,\"stepRange\":\"decode_step\"}", &r, &error) && r.steps == 10 && r.hasStepRange &&
        r.bufferBytes == (4u << 20) && r.maxBytes == (64u << 20));
  CHECK(arm("{\"op\":\"arm\",\"durationMs\":500}", &r, &error) && r.durationMs == 500 && !r.hasStepRange);
  CHECK(arm("{\"op\":\"arm\",\"durationMs\":500,\"maxBytes\":1048576}", &r, &error) && r.bufferBytes == 256u * 1024);
  CHECK(arm("{\"op\":\"arm\",\"stepRange\":\"s\",\"stepDomain\":\"\"}", &r, &error) && r.hasStepDomain && r.stepDomain.empty());
  const char* refused[] = {
      "{\"op\":\"arm\"}",                                                     // neither stepRange nor durationMs
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"durationMs\":5}",                // both
      "{\"op\":\"arm\",\"stepRange\":\"\"}",                                  // empty name
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"steps\":0}",                     // below the bound
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"steps\":100001}",                // above it
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"steps\":1.5}",                   // not whole
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"steps\":\"10\"}",                // not a number
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"maxBytes\":1e300}",              // huge
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"maxBytes\":-1}",
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"bufferBytes\":65540}",          // not a multiple of 8
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"maxBytes\":1048576,\"bufferBytes\":1048576}",  // over half
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"timeoutMs\":99}",
      "{\"op\":\"arm\",\"durationMs\":70000,\"timeoutMs\":60000}",            // window over the cap
      "{\"op\":\"arm\",\"durationMs\":5,\"startAfterSteps\":1}",
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"kinds\":{\"nvtx\":false}}",      // steps need NVTX
      "{\"op\":\"arm\",\"durationMs\":5,\"kinds\":{\"kernels\":false,\"memcpy\":false,\"memset\":false,\"runtimeApi\":false,\"nvtx\":false}}",
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"kinds\":{\"gpu\":true}}",
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"kinds\":[]}",
      "{\"op\":\"arm\",\"stepRange\":\"s\",\"extra\":1}",                     // unknown member
  };
  for (const char* bad : refused) {
    error.clear();
    const bool ok = arm(bad, &r, &error);
    if (ok || error.empty()) std::fprintf(stderr, "accepted: %s\n", bad);
    CHECK(!ok && !error.empty());
  }
  std::string longName(300, 'x');
  CHECK(!arm("{\"op\":\"arm\",\"stepRange\":\"" + longName + "\"}", &r, &error));
  CHECK(!arm(std::string("{\"op\":\"arm\",\"stepRange\":\"a\\u0000b\"}"), &r, &error));

  // Hostile input: random bytes, and random mutations of valid requests. Each must parse or be
  // refused with a message.
  std::mt19937_64 rng(20261201);
  const std::string seeds[] = {"{\"op\":\"arm\",\"steps\":10,\"stepRange\":\"decode_step\",\"kinds\":{\"nvtx\":true}}",
                               "{\"op\":\"hello\"}", "{\"op\":\"stop\",\"reason\":\"timeout\"}", "[1,{\"a\":[true,false,null]}]"};
  const char alphabet[] = "{}[]\":,\\u0123456789eE+-.truefalsnl \t\n\x01\xff\xc3";
  long answered = 0;
  for (int i = 0; i < 100000; ++i) {
    std::string s;
    if (i % 2 == 0) {
      s = seeds[rng() % 4];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const size_t at = rng() % s.size();
        switch (rng() % 3) {
          case 0: s[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
          case 1: s.erase(at, 1); break;
          default: s.insert(at, 1, alphabet[rng() % (sizeof alphabet - 1)]);
        }
      }
    } else {
      const size_t n = rng() % 64;
      for (size_t k = 0; k < n; ++k) s.push_back(static_cast<char>(rng() & 0xff));
    }
    error.clear();
    if (parseJson(s, &j, &error)) {
      if (parseArm(j, &r, &error) || !error.empty()) ++answered;
    } else if (!error.empty()) {
      ++answered;
    }
    parseHeader(reinterpret_cast<const uint8_t*>(s.data()), s.size(), kMaxRequestBytes, &h);
  }
  CHECK(answered == 100000);
  // Deep nesting is refused, not recursed into.
  std::string deep(100000, '[');
  CHECK(!parseJson(deep, &j, &error));

  if (failures > 0) return 1;
  std::printf("ok %ld\n", answered);
  return 0;
}
