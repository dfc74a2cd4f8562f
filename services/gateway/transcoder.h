#pragma once

// REST/JSON <-> protobuf wire bytes for one route, driven only by descriptors: path variables,
// query parameters and the JSON body fill a DynamicMessage of the request type; a response's wire
// bytes become JSON per the protobuf JSON mapping (lowerCamelCase names, int64 as strings, enums
// by name, RFC 3339 timestamps).

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/gateway/routes.h"

namespace google::protobuf {
class Message;
namespace util {
class TypeResolver;
}  // namespace util
}  // namespace google::protobuf

namespace clustergov::gateway {

struct JsonOutputOptions {
  bool emit_defaults = false;  // print fields holding their default value too
  bool pretty = false;
  // The reflection printer (json_printer.h), falling back to protobuf's for what it leaves; false:
  // protobuf's printer only.
  bool fast = true;
};

class Transcoder {
 public:
  Transcoder(const RouteTable* routes, JsonOutputOptions options);
  ~Transcoder();

  // The request message's wire bytes. INVALID_ARGUMENT carrying google.rpc.BadRequest field
  // violations (an unknown JSON field or query parameter is named; malformed JSON is reported as
  // such). `if_match` (an If-Match header, conditional.h) fills the route's etag field when the
  // request sets none; INVALID_ARGUMENT when it is malformed or the route has no etag, ABORTED
  // when it cannot match.
  absl::StatusOr<std::string> BuildRequest(const Route& route, const std::vector<std::string>& path_values,
                                           absl::string_view query, absl::string_view body,
                                           absl::string_view if_match) const;

  // The response's JSON. INTERNAL when the bytes do not parse as the response type.
  absl::StatusOr<std::string> ResponseToJson(const Route& route, const std::string& bytes) const;

  // The top-level `etag` of a response, read from its wire bytes (empty when none).
  static std::string ResponseEtag(const Route& route, const std::string& bytes);

  // JSON of any message of the pool given its wire bytes and full type name; INTERNAL when the bytes
  // do not parse as it, NOT_FOUND for a type the pool lacks.
  absl::StatusOr<std::string> ToJson(const std::string& type_name, const std::string& bytes) const;

 private:
  // `bytes` as JSON of the prototype's type; INTERNAL when they do not parse as it.
  absl::StatusOr<std::string> Print(const google::protobuf::Message& prototype, const std::string& type_url,
                                    const std::string& bytes, bool fast, bool pretty) const;

  const RouteTable* routes_;
  JsonOutputOptions options_;
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
};

// Maps the protobuf JSON parser's error text to a status naming the field where it can:
// "(lead_enterprises[0]) nope: Cannot find field." becomes a violation on lead_enterprises[0].nope.
absl::Status JsonParseError(absl::string_view parser_message);

}  // namespace clustergov::gateway
