#pragma once

// A fast printer for the proto3 JSON mapping over reflection (lowerCamelCase json_name keys,
// int64 as strings, enums by name, bytes as base64, RFC 3339 timestamps, durations, field masks,
// wrappers). protobuf 3.21's own printer converts descriptors to google.protobuf.Type on every
// call; this one walks the message. It leaves Any, Struct, Value and ListValue to that printer.

#include <string>

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace clustergov::gateway {

// Appends `message` as JSON to `out`. False (with `out` unspecified) when the message holds a type
// this printer leaves to the reference one, or a value the mapping cannot print (a timestamp out
// of range).
bool PrintJson(const google::protobuf::Message& message, bool emit_defaults, std::string* out);

}  // namespace clustergov::gateway
