#include "protocol.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>

namespace gt::inject {

// ---- framing -------------------------------------------------------------------------------------

HeaderStatus parseHeader(const uint8_t* data, size_t n, uint32_t maxPayload, Header* out) {
  // A wrong magic is reported as soon as the bytes that are there disagree with it (garbage such as
  // "hello\n" gets its error without the sender having to send 12 bytes).
  for (size_t i = 0; i < 4 && i < n; ++i) {
    if (data[i] != static_cast<uint8_t>(kMagic[i])) return HeaderStatus::BadMagic;
  }
  if (n < kHeaderBytes) return HeaderStatus::NeedMore;
  out->version = data[4];
  out->type = data[5];
  out->length = static_cast<uint32_t>(data[8]) | (static_cast<uint32_t>(data[9]) << 8) |
                (static_cast<uint32_t>(data[10]) << 16) | (static_cast<uint32_t>(data[11]) << 24);
  if (out->version != kVersion) return HeaderStatus::BadVersion;
  if (data[6] != 0 || data[7] != 0) return HeaderStatus::BadType;
  if (out->type != kFrameJson && out->type != kFrameColumns && out->type != kFrameStrings) return HeaderStatus::BadType;
  if (out->length > maxPayload) return HeaderStatus::Oversize;
  return HeaderStatus::Ok;
}

const char* headerStatusName(HeaderStatus s) {
  switch (s) {
    case HeaderStatus::Ok: return "ok";
    case HeaderStatus::NeedMore: return "incomplete header";
    case HeaderStatus::BadMagic: return "not a gpu-telemetry frame (bad magic)";
    case HeaderStatus::BadVersion: return "unsupported protocol version";
    case HeaderStatus::BadType: return "unknown frame type";
    case HeaderStatus::Oversize: return "frame larger than the limit";
  }
  return "?";
}

std::string encodeHeader(uint8_t type, uint32_t length) {
  std::string h(kHeaderBytes, '\0');
  std::memcpy(&h[0], kMagic, 4);
  h[4] = static_cast<char>(kVersion);
  h[5] = static_cast<char>(type);
  for (int i = 0; i < 4; ++i) h[8 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return h;
}

// ---- JSON reader ---------------------------------------------------------------------------------

const Json* Json::find(const std::string& key) const {
  if (type != Type::Object) return nullptr;
  const Json* found = nullptr;
  for (const auto& [k, v] : object) {
    if (k == key) found = &v;
  }
  return found;
}

namespace {

class Reader {
 public:
  explicit Reader(const std::string& text) : s_(text) {}

  bool document(Json* out, std::string* error) {
    skipSpace();
    if (!value(out, 0)) {
      *error = error_.empty() ? "malformed JSON" : error_;
      return false;
    }
    skipSpace();
    if (pos_ != s_.size()) {
      *error = "unexpected text after the JSON value at byte " + std::to_string(pos_);
      return false;
    }
    return true;
  }

 private:
  bool fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }
  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) return fail("invalid literal");
    pos_ += n;
    return true;
  }

  bool value(Json* out, size_t depth) {
    if (depth > kMaxJsonDepth) return fail("JSON nested too deeply");
    if (pos_ >= s_.size()) return fail("unexpected end of JSON");
    const char c = s_[pos_];
    switch (c) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': out->type = Json::Type::String; return string(&out->string);
      case 't': out->type = Json::Type::Bool; out->boolean = true; return literal("true");
      case 'f': out->type = Json::Type::Bool; out->boolean = false; return literal("false");
      case 'n': out->type = Json::Type::Null; return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        return fail("unexpected character");
    }
  }

  bool object(Json* out, size_t depth) {
    out->type = Json::Type::Object;
    ++pos_;
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a member name");
      std::string key;
      if (!string(&key)) return false;
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      skipSpace();
      Json v;
      if (!value(&v, depth + 1)) return false;
      out->object.emplace_back(std::move(key), std::move(v));
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool array(Json* out, size_t depth) {
    out->type = Json::Type::Array;
    ++pos_;
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipSpace();
      Json v;
      if (!value(&v, depth + 1)) return false;
      out->array.push_back(std::move(v));
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex(s_[pos_ + i]);
      if (h < 0) return fail("invalid \\u escape");
      v = (v << 4) | static_cast<uint32_t>(h);
    }
    pos_ += 4;
    *out = v;
    return true;
  }

  static void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  bool string(std::string* out) {
    ++pos_;  // the opening quote
    for (;;) {
      if (pos_ >= s_.size()) return fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) return fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          if (cp >= 0xd800 && cp <= 0xdbff) {  // a high surrogate: a low one must follow
            uint32_t lo = 0;
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') return fail("unpaired surrogate");
            pos_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xdc00 || lo > 0xdfff) return fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return fail("unpaired surrogate");
          }
          utf8(cp, out);
          break;
        }
        default: return fail("invalid escape");
      }
    }
  }

  bool number(Json* out) {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size()) return fail("invalid number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    } else {
      return fail("invalid number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return fail("invalid number");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return fail("invalid number");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    out->type = Json::Type::Number;
    out->number = std::strtod(s_.substr(start, pos_ - start).c_str(), nullptr);
    if (!std::isfinite(out->number)) return fail("number out of range");
    return true;
  }

  const std::string& s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

bool parseJson(const std::string& text, Json* out, std::string* error) {
  *out = Json();
  Reader r(text);
  return r.document(out, error);
}

// ---- JSON writer ---------------------------------------------------------------------------------

std::string jsonQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));  // UTF-8 passes through (invalid bytes included: the reader replaces them)
        }
    }
  }
  out += "\"";
  return out;
}

void JsonWriter::key(const char* k) {
  if (!first_) body_ += ",";
  first_ = false;
  body_ += jsonQuote(k);
  body_ += ":";
}

JsonWriter& JsonWriter::str(const char* k, const std::string& value) {
  key(k);
  body_ += jsonQuote(value);
  return *this;
}

JsonWriter& JsonWriter::num(const char* k, double value) {
  key(k);
  if (!std::isfinite(value)) {
    body_ += "null";
    return *this;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  body_ += buf;
  return *this;
}

JsonWriter& JsonWriter::integer(const char* k, uint64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::boolean(const char* k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null(const char* k) {
  key(k);
  body_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(const char* k, const std::string& json) {
  key(k);
  body_ += json;
  return *this;
}

// ---- the arm request -----------------------------------------------------------------------------

namespace {

bool wholeNumber(const Json& request, const char* key, uint64_t min, uint64_t max, uint64_t* out, std::string* error) {
  const Json* v = request.find(key);
  if (v == nullptr || v->type == Json::Type::Null) return true;  // the default stays
  if (v->type != Json::Type::Number || v->number != std::floor(v->number) || v->number < static_cast<double>(min) ||
      v->number > static_cast<double>(max)) {
    *error = std::string(key) + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    return false;
  }
  *out = static_cast<uint64_t>(v->number);
  return true;
}

bool text(const Json& request, const char* key, size_t maxLength, bool* has, std::string* out, std::string* error) {
  const Json* v = request.find(key);
  if (v == nullptr || v->type == Json::Type::Null) return true;
  if (v->type != Json::Type::String || v->string.size() > maxLength || v->string.find('\0') != std::string::npos) {
    *error = std::string(key) + " must be a string of at most " + std::to_string(maxLength) + " bytes without NUL";
    return false;
  }
  *has = true;
  *out = v->string;
  return true;
}

}  // namespace

bool parseArm(const Json& request, ArmRequest* out, std::string* error) {
  *out = ArmRequest();
  if (request.type != Json::Type::Object) {
    *error = "the request must be a JSON object";
    return false;
  }
  static const char* const kKnown[] = {"op",       "steps",     "startAfterSteps", "stepRange",       "stepDomain",
                                       "durationMs", "maxBytes", "maxRecords",      "bufferBytes",     "timeoutMs",
                                       "flushIntervalMs", "drainTimeoutMs", "kinds"};
  for (const auto& [k, v] : request.object) {
    bool known = false;
    for (const char* name : kKnown) known = known || k == name;
    if (!known) {
      *error = "unknown member \"" + k.substr(0, 64) + "\" in an arm request";
      return false;
    }
  }
  using L = Limits;
  if (!wholeNumber(request, "steps", L::kStepsMin, L::kStepsMax, &out->steps, error) ||
      !wholeNumber(request, "startAfterSteps", 0, L::kStartAfterStepsMax, &out->startAfterSteps, error) ||
      !wholeNumber(request, "durationMs", L::kDurationMsMin, L::kDurationMsMax, &out->durationMs, error) ||
      !wholeNumber(request, "maxBytes", L::kMaxBytesMin, L::kMaxBytesMax, &out->maxBytes, error) ||
      !wholeNumber(request, "maxRecords", L::kMaxRecordsMin, L::kMaxRecordsMax, &out->maxRecords, error) ||
      !wholeNumber(request, "bufferBytes", L::kBufferBytesMin, L::kBufferBytesMax, &out->bufferBytes, error) ||
      !wholeNumber(request, "timeoutMs", L::kTimeoutMsMin, L::kTimeoutMsMax, &out->timeoutMs, error) ||
      !wholeNumber(request, "flushIntervalMs", L::kFlushIntervalMsMin, L::kFlushIntervalMsMax, &out->flushIntervalMs, error) ||
      !wholeNumber(request, "drainTimeoutMs", 0, L::kDrainTimeoutMsMax, &out->drainTimeoutMs, error) ||
      !text(request, "stepRange", L::kStepRangeLength, &out->hasStepRange, &out->stepRange, error) ||
      !text(request, "stepDomain", L::kStepRangeLength, &out->hasStepDomain, &out->stepDomain, error)) {
    return false;
  }
  if (out->hasStepRange && out->stepRange.empty()) {
    *error = "stepRange must name an NVTX range";
    return false;
  }
  if (out->hasStepRange == (out->durationMs != 0)) {
    *error = "an arm request needs exactly one of stepRange (steps counted by NVTX range) and durationMs (a time window)";
    return false;
  }
  if (out->durationMs != 0 && (out->startAfterSteps != 0 || out->hasStepDomain)) {
    *error = "startAfterSteps and stepDomain go with stepRange, not durationMs";
    return false;
  }
  if (out->durationMs > out->timeoutMs) {
    *error = "durationMs must not be longer than timeoutMs";
    return false;
  }
  if (out->bufferBytes == 0) {
    out->bufferBytes = std::max<uint64_t>(L::kBufferBytesMin, std::min<uint64_t>(L::kBufferBytesDefault, out->maxBytes / 4));
  } else if (out->bufferBytes > out->maxBytes / 2 || out->bufferBytes % 8 != 0) {
    *error = "bufferBytes must be a multiple of 8 and at most half of maxBytes";
    return false;
  }
  if (const Json* kinds = request.find("kinds"); kinds != nullptr && kinds->type != Json::Type::Null) {
    if (kinds->type != Json::Type::Object) {
      *error = "kinds must be an object of booleans";
      return false;
    }
    for (const auto& [k, v] : kinds->object) {
      bool* flag = k == "kernels"      ? &out->kernels
                   : k == "memcpy"     ? &out->memcpy
                   : k == "memset"     ? &out->memset
                   : k == "runtimeApi" ? &out->runtimeApi
                   : k == "driverApi"  ? &out->driverApi
                   : k == "nvtx"       ? &out->nvtx
                                       : nullptr;
      if (flag == nullptr || v.type != Json::Type::Bool) {
        *error = "kinds." + k.substr(0, 64) + " is not a record kind set to true or false";
        return false;
      }
      *flag = v.boolean;
    }
  }
  if (!out->kernels && !out->memcpy && !out->memset && !out->runtimeApi && !out->driverApi && !out->nvtx) {
    *error = "kinds turns every record kind off";
    return false;
  }
  if (out->hasStepRange && !out->nvtx) {
    *error = "kinds.nvtx must stay on with stepRange (steps are NVTX records)";
    return false;
  }
  return true;
}

}  // namespace gt::inject
