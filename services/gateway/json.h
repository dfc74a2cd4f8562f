#pragma once

// A small ordered JSON document builder for what the gateway writes itself (the OpenAPI
// document, /readyz): objects keep insertion order, strings are escaped, output is compact.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace clustergov::gateway {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() = default;
  Json(bool b) : type_(Type::kBool), scalar_(b ? "true" : "false") {}    // NOLINT
  Json(int v) : type_(Type::kNumber), scalar_(std::to_string(v)) {}      // NOLINT
  Json(int64_t v) : type_(Type::kNumber), scalar_(std::to_string(v)) {}  // NOLINT
  Json(const char* s) : type_(Type::kString), scalar_(s) {}              // NOLINT
  Json(std::string s) : type_(Type::kString), scalar_(std::move(s)) {}   // NOLINT
  Json(absl::string_view s) : type_(Type::kString), scalar_(s) {}        // NOLINT

  static Json Object() {
    Json j;
    j.type_ = Type::kObject;
    return j;
  }
  static Json Array() {
    Json j;
    j.type_ = Type::kArray;
    return j;
  }

  Type type() const { return type_; }
  // Object member, appended when missing (a null Json becomes an object).
  Json& operator[](absl::string_view key);
  bool Has(absl::string_view key) const;
  // Array element (a null Json becomes an array).
  Json& Push(Json value);
  size_t size() const { return type_ == Type::kArray ? items_.size() : members_.size(); }

  std::string Dump() const;
  void DumpTo(std::string* out) const;

 private:
  Type type_ = Type::kNull;
  std::string scalar_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

// Appends `s` as a JSON string literal.
void AppendJsonString(std::string* out, absl::string_view s);

}  // namespace clustergov::gateway
