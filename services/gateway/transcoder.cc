#include "services/gateway/transcoder.h"

#include <mutex>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "google/protobuf/wire_format_lite.h"
#include "services/gateway/conditional.h"
#include "services/gateway/json_printer.h"

namespace clustergov::gateway {
namespace {

namespace pb = google::protobuf;
using pb::FieldDescriptor;

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

// The descriptor pool resolver converts a descriptor into a google.protobuf.Type on every lookup;
// this keeps each conversion once. Thread-safe.
class CachingTypeResolver : public pb::util::TypeResolver {
 public:
  explicit CachingTypeResolver(const pb::DescriptorPool* pool)
      : inner_(pb::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix, pool)) {}

  pb::util::Status ResolveMessageType(const std::string& type_url, pb::Type* type) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = types_.find(type_url);
      if (it != types_.end()) {
        *type = it->second;
        return pb::util::Status();
      }
    }
    pb::util::Status s = inner_->ResolveMessageType(type_url, type);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      types_.emplace(type_url, *type);
    }
    return s;
  }

  pb::util::Status ResolveEnumType(const std::string& type_url, pb::Enum* enum_type) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = enums_.find(type_url);
      if (it != enums_.end()) {
        *enum_type = it->second;
        return pb::util::Status();
      }
    }
    pb::util::Status s = inner_->ResolveEnumType(type_url, enum_type);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      enums_.emplace(type_url, *enum_type);
    }
    return s;
  }

 private:
  std::unique_ptr<pb::util::TypeResolver> inner_;
  std::mutex mu_;
  std::unordered_map<std::string, pb::Type> types_;
  std::unordered_map<std::string, pb::Enum> enums_;
};

std::string TypeUrl(const pb::Descriptor* d) { return absl::StrCat(kTypeUrlPrefix, "/", d->full_name()); }

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

bool IsBlank(absl::string_view s) { return absl::StripAsciiWhitespace(s).empty(); }

// Well-known types a query parameter can set, through their JSON form.
bool QuerySettableMessage(const pb::Descriptor* d, bool* raw_json) {
  const std::string& n = d->full_name();
  *raw_json = n == "google.protobuf.BoolValue";
  return n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration" || n == "google.protobuf.FieldMask" ||
         n == "google.protobuf.StringValue" || n == "google.protobuf.BytesValue" || n == "google.protobuf.Int32Value" ||
         n == "google.protobuf.UInt32Value" || n == "google.protobuf.Int64Value" ||
         n == "google.protobuf.UInt64Value" || n == "google.protobuf.FloatValue" ||
         n == "google.protobuf.DoubleValue" || n == "google.protobuf.BoolValue";
}

// Descends `fields` from `msg`, creating the intermediate messages; the message holding the leaf.
pb::Message* Holder(pb::Message* msg, const std::vector<const FieldDescriptor*>& fields, pb::MessageFactory* factory) {
  for (size_t i = 0; i + 1 < fields.size(); ++i) {
    msg = msg->GetReflection()->MutableMessage(msg, fields[i], factory);
  }
  return msg;
}

}  // namespace

absl::Status JsonParseError(absl::string_view message) {
  std::string text(absl::StripAsciiWhitespace(message));
  // "(loc) name: Cannot find field." / "name: Cannot find field."
  constexpr absl::string_view kUnknown = ": Cannot find field.";
  if (absl::EndsWith(text, kUnknown)) {
    absl::string_view rest = absl::string_view(text).substr(0, text.size() - kUnknown.size());
    std::string field;
    if (absl::ConsumePrefix(&rest, "(")) {
      auto close = rest.find(") ");
      if (close != absl::string_view::npos) {
        field = absl::StrCat(rest.substr(0, close), ".", rest.substr(close + 2));
      }
    }
    if (field.empty()) field = std::string(rest);
    return InvalidField(field, absl::StrCat("unknown field \"", field, "\""));
  }
  // "(target_year): invalid value "abc" for type TYPE_INT32"
  if (absl::StartsWith(text, "(")) {
    auto close = text.find("): ");
    if (close != std::string::npos) {
      std::string field = text.substr(1, close - 1);
      if (!field.empty()) return InvalidField(field, text.substr(close + 3));
    }
  }
  // Syntax errors come with the offending text and a caret on following lines: keep the first.
  std::string first(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
  if (absl::StartsWith(first, ": ")) first = first.substr(2);
  return absl::InvalidArgumentError(absl::StrCat("malformed JSON body: ", first));
}

Transcoder::Transcoder(const RouteTable* routes, JsonOutputOptions options)
    : routes_(routes), options_(options), resolver_(new CachingTypeResolver(&routes->pool())) {}

Transcoder::~Transcoder() = default;

namespace {

absl::Status SetScalar(pb::Message* msg, const FieldDescriptor* f, const std::string& value, const std::string& name,
                       pb::util::TypeResolver* resolver, pb::MessageFactory* factory) {
  const pb::Reflection* r = msg->GetReflection();
  bool repeated = f->is_repeated();
  auto bad = [&](absl::string_view what) {
    return InvalidField(name, absl::StrCat("invalid value \"", value, "\": ", what));
  };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v = value;
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        if (!absl::Base64Unescape(value, &v) && !absl::WebSafeBase64Unescape(value, &v)) return bad("expected base64");
      } else if (!pb::internal::IsStructurallyValidUTF8(value)) {
        // The backend could not parse the request (proto3 strings are UTF-8): refused here, and
        // the value is not echoed.
        return InvalidField(name, "not UTF-8 text once percent-decoded");
      }
      repeated ? r->AddString(msg, f, std::move(v)) : r->SetString(msg, f, std::move(v));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("expected a 32-bit integer");
      repeated ? r->AddInt32(msg, f, v) : r->SetInt32(msg, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("expected a 64-bit integer");
      repeated ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("expected an unsigned 32-bit integer");
      repeated ? r->AddUInt32(msg, f, v) : r->SetUInt32(msg, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("expected an unsigned 64-bit integer");
      repeated ? r->AddUInt64(msg, f, v) : r->SetUInt64(msg, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!absl::SimpleAtod(value, &v)) return bad("expected a number");
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        repeated ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
      } else {
        repeated ? r->AddFloat(msg, f, static_cast<float>(v)) : r->SetFloat(msg, f, static_cast<float>(v));
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (value == "true" || value == "1") {
        v = true;
      } else if (value == "false" || value == "0") {
        v = false;
      } else {
        return bad("expected true or false");
      }
      repeated ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* e = f->enum_type()->FindValueByName(value);
      int number;
      if (e == nullptr && absl::SimpleAtoi(value, &number)) e = f->enum_type()->FindValueByNumber(number);
      if (e == nullptr) {
        std::vector<std::string> names;
        for (int i = 0; i < f->enum_type()->value_count(); ++i) names.push_back(f->enum_type()->value(i)->name());
        return bad(absl::StrCat("expected one of ", absl::StrJoin(names, ", ")));
      }
      repeated ? r->AddEnum(msg, f, e) : r->SetEnum(msg, f, e);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      bool raw = false;
      if (!QuerySettableMessage(f->message_type(), &raw)) {
        return InvalidField(
            name, absl::StrCat("a ", f->message_type()->full_name(), " cannot be set from a query parameter"));
      }
      std::string bytes;
      pb::util::Status s =
          pb::util::JsonToBinaryString(resolver, TypeUrl(f->message_type()), raw ? value : JsonQuote(value), &bytes);
      if (!s.ok()) return bad(std::string(s.message()));
      pb::Message* sub = repeated ? r->AddMessage(msg, f, factory) : r->MutableMessage(msg, f, factory);
      if (!sub->ParseFromString(bytes)) return bad("cannot decode");
      return absl::OkStatus();
    }
  }
  return bad("unsupported field type");
}

}  // namespace

absl::StatusOr<std::string> Transcoder::BuildRequest(const Route& route, const std::vector<std::string>& path_values,
                                                     absl::string_view query, absl::string_view body,
                                                     absl::string_view if_match) const {
  pb::MessageFactory* factory = &routes_->factory();
  std::unique_ptr<pb::Message> msg(route.request_prototype->New());
  const pb::Reflection* refl = msg->GetReflection();

  // The body.
  if (!IsBlank(body)) {
    if (route.body.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(route.http_method, " ", route.path.text(), " takes no request body"));
    }
    pb::util::JsonParseOptions parse;  // unknown fields are errors
    std::string bytes;
    if (route.body == "*") {
      auto s = pb::util::JsonToBinaryString(resolver_.get(), route.request_type_url,
                                            pb::StringPiece(body.data(), body.size()), &bytes, parse);
      if (!s.ok()) return JsonParseError(s.message().as_string());
      if (!msg->MergeFromString(bytes)) return absl::InternalError("request does not decode");
    } else if (route.body_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !route.body_field->is_repeated()) {
      auto s = pb::util::JsonToBinaryString(resolver_.get(), TypeUrl(route.body_field->message_type()),
                                            pb::StringPiece(body.data(), body.size()), &bytes, parse);
      if (!s.ok()) return JsonParseError(s.message().as_string());
      if (!refl->MutableMessage(msg.get(), route.body_field, factory)->MergeFromString(bytes)) {
        return absl::InternalError("request body does not decode");
      }
    } else {
      // A repeated or scalar body field: parse it as that field of the request.
      std::string wrapped = absl::StrCat("{", JsonQuote(route.body_field->json_name()), ":", body, "}");
      auto s = pb::util::JsonToBinaryString(resolver_.get(), route.request_type_url, wrapped, &bytes, parse);
      if (!s.ok()) return JsonParseError(s.message().as_string());
      if (!msg->MergeFromString(bytes)) return absl::InternalError("request does not decode");
    }
  }

  // Query parameters: any field not bound by the path or the body, by proto or JSON name, dotted.
  if (!query.empty()) {
    for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
      std::string key, value;
      if (auto s = DecodeQueryParameter(pair, &key, &value); !s.ok()) return s;
      if (key.empty()) continue;
      if (route.body == "*") {
        return InvalidField(key, "unknown query parameter: the request body carries the whole request");
      }
      std::vector<std::string> parts = absl::StrSplit(key, '.');
      auto fields = ResolveFieldPath(route.method->input_type(), parts);
      if (!fields.ok()) return InvalidField(key, absl::StrCat("unknown query parameter \"", key, "\""));
      if (route.body_field != nullptr && (*fields)[0] == route.body_field) {
        return InvalidField(key, "set in the request body, not the query");
      }
      for (const auto& bound : route.variable_fields) {
        if (bound == *fields) return InvalidField(key, "set by the path, not the query");
      }
      const FieldDescriptor* leaf = fields->back();
      if (leaf->is_map()) return InvalidField(key, "a map cannot be set from a query parameter");
      pb::Message* holder = Holder(msg.get(), *fields, factory);
      if (auto s = SetScalar(holder, leaf, value, key, resolver_.get(), factory); !s.ok()) return s;
    }
  }

  // Path variables last: they win over the body.
  for (size_t i = 0; i < route.variable_fields.size() && i < path_values.size(); ++i) {
    const auto& fields = route.variable_fields[i];
    pb::Message* holder = Holder(msg.get(), fields, factory);
    std::string name = absl::StrJoin(route.path.variables()[i].field_path, ".");
    if (auto s = SetScalar(holder, fields.back(), path_values[i], name, resolver_.get(), factory); !s.ok()) {
      return s;
    }
  }

  // If-Match (conditional.h): its one strong entity tag fills an unset etag; "*" means any version.
  if (!if_match.empty()) {
    if (route.etag_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("If-Match: ", route.http_method, " ", route.path.text(),
                                                     " has no etag to compare; send the request without it"));
    }
    auto list = ParseEntityTags("If-Match", if_match);
    if (!list.ok()) return list.status();
    auto tag = IfMatchEtag(*list);
    if (!tag.ok()) return tag.status();
    if (!pb::internal::IsStructurallyValidUTF8(*tag)) {
      return absl::InvalidArgumentError("If-Match: the entity tag is not UTF-8 text");
    }
    if (!tag->empty()) {
      pb::Message* holder = Holder(msg.get(), route.etag_path, factory);
      const FieldDescriptor* etag = route.etag_path.back();
      if (holder->GetReflection()->GetString(*holder, etag).empty()) {
        holder->GetReflection()->SetString(holder, etag, *std::move(tag));
      }
    }
  }
  std::string out;
  if (!msg->SerializeToString(&out)) return absl::InternalError("request does not serialize");
  return out;
}

absl::StatusOr<std::string> Transcoder::ResponseToJson(const Route& route, const std::string& bytes) const {
  return Print(*route.response_prototype, route.response_type_url, bytes, options_.fast && !options_.pretty,
               options_.pretty);
}

absl::StatusOr<std::string> Transcoder::ToJson(const std::string& type_name, const std::string& bytes) const {
  const pb::Descriptor* type = routes_->pool().FindMessageTypeByName(type_name);
  if (type == nullptr) return absl::NotFoundError(absl::StrCat("no message type ", type_name));
  return Print(*routes_->factory().GetPrototype(type), absl::StrCat(kTypeUrlPrefix, "/", type_name), bytes,
               options_.fast, /*pretty=*/false);
}

absl::StatusOr<std::string> Transcoder::Print(const pb::Message& prototype, const std::string& type_url,
                                              const std::string& bytes, bool fast, bool pretty) const {
  // Parsed first: protobuf's binary-to-JSON converter does not return on some malformed bytes.
  std::unique_ptr<pb::Message> msg(prototype.New());
  if (!msg->ParseFromString(bytes)) {
    return absl::InternalError(absl::StrCat("bytes do not parse as ", prototype.GetDescriptor()->full_name()));
  }
  std::string json;
  if (fast && PrintJson(*msg, options_.emit_defaults, &json)) return json;
  json.clear();
  pb::util::JsonPrintOptions print;
  print.always_print_primitive_fields = options_.emit_defaults;
  print.add_whitespace = pretty;
  auto s = pb::util::BinaryToJsonString(resolver_.get(), type_url, msg->SerializeAsString(), &json, print);
  if (!s.ok()) return absl::InternalError(absl::StrCat("does not convert to JSON: ", s.message().as_string()));
  return json;
}

std::string Transcoder::ResponseEtag(const Route& route, const std::string& bytes) {
  if (route.response_etag_number == 0) return "";
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  std::string etag;
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (static_cast<int>(pb::internal::WireFormatLite::GetTagFieldNumber(tag)) == route.response_etag_number &&
        pb::internal::WireFormatLite::GetTagWireType(tag) == pb::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      uint32_t len;
      if (!in.ReadVarint32(&len) || !in.ReadString(&etag, static_cast<int>(len))) return "";
      continue;  // the last occurrence wins
    }
    if (!pb::internal::WireFormatLite::SkipField(&in, tag)) return "";
  }
  return etag;
}

}  // namespace clustergov::gateway
