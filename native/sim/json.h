// A small, strict JSON reader for scenario files (RFC 8259; no comments, no trailing commas).
// Bounded: nesting depth and input size are capped so a hostile file is an error, not a crash.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gtsim {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  static Json makeBool(bool b);
  static Json makeNumber(double n);
  static Json makeString(std::string s);
  static Json makeArray();
  static Json makeObject();

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }

  bool boolean() const { return bool_; }
  double number() const { return number_; }
  const std::string& string() const { return string_; }
  const std::vector<Json>& items() const { return items_; }
  // Object members in file order (duplicate keys are rejected by the parser).
  const std::vector<std::pair<std::string, Json>>& members() const { return members_; }
  const Json* find(const std::string& key) const;

  std::vector<Json>& mutableItems() { return items_; }
  std::vector<std::pair<std::string, Json>>& mutableMembers() { return members_; }

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

struct JsonLimits {
  size_t maxBytes = 4 << 20;
  size_t maxDepth = 64;
};

// Parses `text`; on error returns false and sets `error` to "line L, column C: what".
bool parseJson(const std::string& text, Json& out, std::string& error, JsonLimits limits = {});

const char* jsonTypeName(Json::Type t);

}  // namespace gtsim
