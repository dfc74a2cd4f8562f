#include "services/gateway/openapi.h"

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "services/gateway/json.h"

namespace clustergov::gateway {
namespace {

namespace pb = google::protobuf;
using pb::FieldDescriptor;

constexpr char kStatusSchema[] = "google.rpc.Status";
constexpr char kAnySchema[] = "google.protobuf.Any";
constexpr char kEtagHeader[] = "ETag";
constexpr char kIfMatchParameter[] = "IfMatch";
constexpr char kIfNoneMatchParameter[] = "IfNoneMatch";

Json ComponentRef(absl::string_view kind, absl::string_view name) {
  Json j = Json::Object();
  j["$ref"] = absl::StrCat("#/components/", kind, "/", name);
  return j;
}

std::string Ref(absl::string_view name) { return absl::StrCat("#/components/schemas/", name); }

Json RefSchema(absl::string_view name) {
  Json j = Json::Object();
  j["$ref"] = Ref(name);
  return j;
}

template <typename D>
std::string Comments(const D* d) {
  pb::SourceLocation loc;
  if (!d->GetSourceLocation(&loc)) return "";
  std::string text = loc.leading_comments;
  if (!loc.trailing_comments.empty()) absl::StrAppend(&text, text.empty() ? "" : "\n", loc.trailing_comments);
  // Comment lines start with one space after "//".
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (auto& l : lines) l = std::string(absl::StripAsciiWhitespace(l));
  return std::string(absl::StripAsciiWhitespace(absl::StrJoin(lines, "\n")));
}

// "clusters" -> "cluster", "policies" -> "policy", "taskProgress" stays.
std::string Singular(absl::string_view word) {
  std::string w(word);
  if (absl::EndsWith(w, "ies") && w.size() > 3) return w.substr(0, w.size() - 3) + "y";
  if (absl::EndsWith(w, "s") && !absl::EndsWith(w, "ss") && w.size() > 1) return w.substr(0, w.size() - 1);
  return w;
}

std::string JsonPath(const std::vector<const FieldDescriptor*>& fields) {
  std::vector<std::string> names;
  for (const auto* f : fields) names.push_back(f->json_name());
  return absl::StrJoin(names, ".");
}

bool IsWellKnown(const pb::Descriptor* d) { return absl::StartsWith(d->full_name(), "google.protobuf."); }

class Builder {
 public:
  explicit Builder(const RouteTable& routes) : routes_(routes) {}

  std::string Build(const OpenApiInfo& info) {
    Json doc = Json::Object();
    doc["openapi"] = "3.0.3";
    Json& i = doc["info"];
    i["title"] = info.title;
    i["version"] = info.version;
    i["description"] = info.description.empty()
                           ? std::string(
                                 "REST/JSON front door of the clustergov gRPC services, transcoded from their "
                                 "google.api.http annotations. JSON follows the protobuf JSON mapping "
                                 "(lowerCamelCase names, int64 as strings, enums by name, RFC 3339 times). "
                                 "Errors are google.rpc.Status objects.")
                           : info.description;
    Json servers = Json::Array();
    Json server = Json::Object();
    server["url"] = "/";
    servers.Push(std::move(server));
    doc["servers"] = std::move(servers);
    Json tags = Json::Array();
    for (const auto* s : routes_.services()) {
      Json tag = Json::Object();
      tag["name"] = s->name();
      std::string comment = Comments(s);
      tag["description"] = comment.empty() ? s->full_name() : absl::StrCat(comment, "\n\n(", s->full_name(), ")");
      tags.Push(std::move(tag));
    }
    doc["tags"] = std::move(tags);
    Json sec = Json::Array();
    Json bearer = Json::Object();
    bearer["bearerAuth"] = Json::Array();
    sec.Push(std::move(bearer));
    doc["security"] = std::move(sec);

    Json& paths = doc["paths"];
    paths = Json::Object();
    for (const auto& route : routes_.routes()) AddOperation(*route, &paths);

    Json& components = doc["components"];
    Json& schemas = components["schemas"];
    schemas = Json::Object();
    // Messages and enums reached, breadth first, in a stable order.
    while (!pending_messages_.empty() || !pending_enums_.empty()) {
      if (!pending_messages_.empty()) {
        const pb::Descriptor* d = *pending_messages_.begin();
        pending_messages_.erase(pending_messages_.begin());
        schemas[d->full_name()] = MessageSchema(d);
        continue;
      }
      const pb::EnumDescriptor* e = *pending_enums_.begin();
      pending_enums_.erase(pending_enums_.begin());
      schemas[e->full_name()] = EnumSchema(e);
    }
    schemas[kStatusSchema] = StatusSchema();
    schemas[kAnySchema] = AnySchema();
    ConditionalComponents(&components);
    Json& schemes = components["securitySchemes"];
    Json& bearer_scheme = schemes["bearerAuth"];
    bearer_scheme["type"] = "http";
    bearer_scheme["scheme"] = "bearer";
    bearer_scheme["bearerFormat"] = "JWT";
    return doc.Dump();
  }

 private:
  struct Compare {
    template <typename T>
    bool operator()(const T* a, const T* b) const {
      return a->full_name() < b->full_name();
    }
  };

  void NeedMessage(const pb::Descriptor* d) {
    if (seen_messages_.insert(d).second) pending_messages_.insert(d);
  }
  void NeedEnum(const pb::EnumDescriptor* e) {
    if (seen_enums_.insert(e).second) pending_enums_.insert(e);
  }

  Json ScalarSchema(const FieldDescriptor* f) {
    Json s = Json::Object();
    switch (f->type()) {
      case FieldDescriptor::TYPE_STRING:
        s["type"] = "string";
        break;
      case FieldDescriptor::TYPE_BYTES:
        s["type"] = "string";
        s["format"] = "byte";
        break;
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32:
        s["type"] = "integer";
        s["format"] = "int32";
        break;
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        s["type"] = "integer";
        s["format"] = "int64";
        s["minimum"] = 0;
        break;
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
        s["type"] = "string";
        s["format"] = "int64";
        break;
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        s["type"] = "string";
        s["format"] = "uint64";
        break;
      case FieldDescriptor::TYPE_FLOAT:
        s["type"] = "number";
        s["format"] = "float";
        break;
      case FieldDescriptor::TYPE_DOUBLE:
        s["type"] = "number";
        s["format"] = "double";
        break;
      case FieldDescriptor::TYPE_BOOL:
        s["type"] = "boolean";
        break;
      case FieldDescriptor::TYPE_ENUM:
        NeedEnum(f->enum_type());
        return RefSchema(f->enum_type()->full_name());
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP:
        return MessageRefSchema(f->message_type());
    }
    return s;
  }

  Json WellKnownSchema(const pb::Descriptor* d) {
    const std::string& n = d->full_name();
    Json s = Json::Object();
    if (n == "google.protobuf.Timestamp") {
      s["type"] = "string";
      s["format"] = "date-time";
    } else if (n == "google.protobuf.Duration") {
      s["type"] = "string";
      s["description"] = "Seconds with up to 9 fractional digits, suffixed with 's' (\"1.5s\").";
    } else if (n == "google.protobuf.FieldMask") {
      s["type"] = "string";
      s["description"] =
          "Comma-separated lowerCamelCase field paths (\"displayNameEn,targetYear\"); "
          "\"*\" or empty means every updatable field.";
    } else if (n == "google.protobuf.StringValue") {
      s["type"] = "string";
    } else if (n == "google.protobuf.BytesValue") {
      s["type"] = "string";
      s["format"] = "byte";
    } else if (n == "google.protobuf.BoolValue") {
      s["type"] = "boolean";
    } else if (n == "google.protobuf.Int32Value" || n == "google.protobuf.UInt32Value") {
      s["type"] = "integer";
    } else if (n == "google.protobuf.Int64Value" || n == "google.protobuf.UInt64Value") {
      s["type"] = "string";
      s["format"] = "int64";
    } else if (n == "google.protobuf.FloatValue" || n == "google.protobuf.DoubleValue") {
      s["type"] = "number";
    } else if (n == "google.protobuf.Struct") {
      s["type"] = "object";
      s["additionalProperties"] = true;
    } else if (n == "google.protobuf.ListValue") {
      s["type"] = "array";
      s["items"] = Json::Object();
    } else if (n == "google.protobuf.Any") {
      return RefSchema(kAnySchema);
    } else if (n == "google.protobuf.Value") {
      s["nullable"] = true;  // any JSON value
    } else {                 // Empty and anything else
      s["type"] = "object";
    }
    return s;
  }

  Json MessageRefSchema(const pb::Descriptor* d) {
    if (IsWellKnown(d)) return WellKnownSchema(d);
    NeedMessage(d);
    return RefSchema(d->full_name());
  }

  Json FieldSchema(const FieldDescriptor* f) {
    Json s;
    if (f->is_map()) {
      s = Json::Object();
      s["type"] = "object";
      s["additionalProperties"] = ScalarSchema(f->message_type()->map_value());
    } else if (f->is_repeated()) {
      s = Json::Object();
      s["type"] = "array";
      s["items"] = ScalarSchema(f);
    } else {
      s = ScalarSchema(f);
    }
    return s;
  }

  static Json Describe(Json schema, const std::string& description) {
    if (description.empty()) return schema;
    if (schema.Has("$ref")) {
      Json wrapped = Json::Object();
      Json all = Json::Array();
      all.Push(std::move(schema));
      wrapped["allOf"] = std::move(all);
      wrapped["description"] = description;
      return wrapped;
    }
    if (!schema.Has("description")) schema["description"] = description;
    return schema;
  }

  Json MessageSchema(const pb::Descriptor* d) {
    Json s = Json::Object();
    s["type"] = "object";
    std::string comment = Comments(d);
    if (!comment.empty()) s["description"] = comment;
    Json& props = s["properties"];
    props = Json::Object();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      props[f->json_name()] = Describe(FieldSchema(f), Comments(f));
    }
    s["additionalProperties"] = false;
    return s;
  }

  Json EnumSchema(const pb::EnumDescriptor* e) {
    Json s = Json::Object();
    s["type"] = "string";
    Json values = Json::Array();
    std::vector<std::string> docs;
    for (int i = 0; i < e->value_count(); ++i) {
      values.Push(e->value(i)->name());
      std::string c = Comments(e->value(i));
      if (!c.empty()) docs.push_back(absl::StrCat("- ", e->value(i)->name(), ": ", c));
    }
    s["enum"] = std::move(values);
    std::string comment = Comments(e);
    if (!docs.empty()) absl::StrAppend(&comment, comment.empty() ? "" : "\n\n", absl::StrJoin(docs, "\n"));
    if (!comment.empty()) s["description"] = comment;
    return s;
  }

  static Json StatusSchema() {
    Json s = Json::Object();
    s["type"] = "object";
    s["description"] =
        "An error: the gRPC status code (google.rpc.Code), a message, and details such as google.rpc.BadRequest "
        "field violations. The HTTP status follows the canonical mapping (400, 401, 403, 404, 409, 429, 499, "
        "501, 503, 504, 500).";
    Json& p = s["properties"];
    p["code"]["type"] = "integer";
    p["code"]["format"] = "int32";
    p["code"]["description"] = "google.rpc.Code value (3 INVALID_ARGUMENT, 5 NOT_FOUND, ...).";
    p["message"]["type"] = "string";
    p["details"]["type"] = "array";
    p["details"]["items"] = RefSchema(kAnySchema);
    Json required = Json::Array();
    required.Push("code");
    required.Push("message");
    s["required"] = std::move(required);
    return s;
  }

  static Json AnySchema() {
    Json s = Json::Object();
    s["type"] = "object";
    s["description"] =
        "A typed detail. type.googleapis.com/google.rpc.BadRequest carries fieldViolations: "
        "[{field, description}].";
    s["properties"]["@type"]["type"] = "string";
    s["additionalProperties"] = true;
    return s;
  }

  // The ETag header and the If-Match / If-None-Match parameters the operations refer to.
  static void ConditionalComponents(Json* components) {
    Json& etag = (*components)["headers"][kEtagHeader];
    etag["description"] =
        "The resource's version, its `etag` field as a strong entity tag (`\"abc\"`). Send it back in "
        "If-Match to update only that version, or in If-None-Match to read only a changed one.";
    etag["schema"]["type"] = "string";

    Json& params = (*components)["parameters"];
    params[kIfMatchParameter] = HeaderParameter(
        "If-Match",
        "Apply the change only to this version (RFC 9110 13.1.1, strong comparison): an ETag as received, "
        "or `*` for any version. Fills the request's `etag` unless the request sets it. A stale or weak "
        "(`W/`) entity tag is refused with 409 (ABORTED) and changes nothing; several different entity tags "
        "are a 400.");
    params[kIfNoneMatchParameter] = HeaderParameter(
        "If-None-Match",
        "Answer 304 Not Modified, without a body, when the resource's ETag is one of these (RFC 9110 13.1.2, "
        "weak comparison: `W/\"abc\"` matches `\"abc\"`) or the value is `*`.");
  }

  static Json HeaderParameter(absl::string_view name, absl::string_view description) {
    Json p = Json::Object();
    p["name"] = name;
    p["in"] = "header";
    p["required"] = false;
    p["description"] = description;
    p["schema"]["type"] = "string";
    return p;
  }

  // Query parameters: every leaf the query may set, dotted JSON names.
  void QueryParameters(const pb::Descriptor* d, const Route& route, std::vector<const FieldDescriptor*>* prefix,
                       Json* params, int depth) {
    if (depth > 3) return;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      prefix->push_back(f);
      bool bound = prefix->size() == 1 && f == route.body_field;
      for (const auto& v : route.variable_fields) bound = bound || v == *prefix;
      if (!bound && !f->is_map()) {
        bool message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
        if (message && !IsWellKnown(f->message_type())) {
          if (!f->is_repeated()) QueryParameters(f->message_type(), route, prefix, params, depth + 1);
        } else if (!message || !f->is_repeated()) {
          Json p = Json::Object();
          p["name"] = JsonPath(*prefix);
          p["in"] = "query";
          std::string c = Comments(f);
          if (!c.empty()) p["description"] = c;
          p["schema"] = FieldSchema(f);
          if (f->is_repeated()) {
            p["style"] = "form";
            p["explode"] = true;
          }
          params->Push(std::move(p));
        }
      }
      prefix->pop_back();
    }
  }

  void AddOperation(const Route& route, Json* paths) {
    const pb::Descriptor* input = route.method->input_type();
    // The OpenAPI path: variables expanded so every parameter is one path segment:
    // "/v1/{name=clusters/*}" -> "/v1/clusters/{clusterId}".
    const auto& segments = route.path.segments();
    const auto& vars = route.path.variables();
    std::string path;
    Json params = Json::Array();
    std::set<std::string> names;
    for (size_t i = 0; i < segments.size(); ++i) {
      path.push_back('/');
      const auto& seg = segments[i];
      if (seg.kind == PathTemplate::Kind::kLiteral) {
        path += seg.literal;
        continue;
      }
      int var_index = -1;
      for (size_t v = 0; v < vars.size(); ++v) {
        if (static_cast<int>(i) >= vars[v].start && static_cast<int>(i) < vars[v].end) var_index = static_cast<int>(v);
      }
      std::string name;
      std::string description;
      Json schema = Json::Object();
      schema["type"] = "string";
      if (var_index < 0) {
        name = absl::StrCat("segment", i);
      } else {
        const auto& var = vars[var_index];
        const auto& fields = route.variable_fields[var_index];
        std::string field = absl::StrJoin(var.field_path, ".");
        bool whole = var.end - var.start == 1;
        if (whole) {
          name = JsonPath(fields);
          schema = FieldSchema(fields.back());
          description = Comments(fields.back());
        } else {
          name = i > 0 && segments[i - 1].kind == PathTemplate::Kind::kLiteral
                     ? absl::StrCat(Singular(segments[i - 1].literal), "Id")
                     : absl::StrCat(JsonPath(fields), i);
          std::string pattern;
          for (int k = var.start; k < var.end; ++k) {
            absl::StrAppend(&pattern, k > var.start ? "/" : "",
                            segments[k].kind == PathTemplate::Kind::kLiteral ? segments[k].literal
                            : k == static_cast<int>(i)                       ? absl::StrCat("{", name, "}")
                                                                             : "*");
          }
          description = absl::StrCat("Part of `", field, "` = `", pattern, "`.");
        }
        if (seg.kind == PathTemplate::Kind::kMulti) absl::StrAppend(&description, " May contain '/'.");
      }
      while (names.count(name) > 0) name += "_";
      names.insert(name);
      path += absl::StrCat("{", name, "}");
      Json p = Json::Object();
      p["name"] = name;
      p["in"] = "path";
      p["required"] = true;
      if (!description.empty()) p["description"] = description;
      p["schema"] = std::move(schema);
      params.Push(std::move(p));
    }
    if (!route.path.verb().empty()) absl::StrAppend(&path, ":", route.path.verb());

    std::string method = absl::AsciiStrToLower(route.http_method);
    static const std::set<std::string> kOpenApiMethods = {"get",     "put",  "post",  "delete",
                                                          "options", "head", "patch", "trace"};
    if (kOpenApiMethods.count(method) == 0) return;
    Json& item = (*paths)[path];
    if (item.Has(method)) return;  // two bindings on one path and method: the first documents it

    if (route.body != "*") {
      std::vector<const FieldDescriptor*> prefix;
      QueryParameters(input, route, &prefix, &params, 0);
    }
    // Conditional requests (gateway.cc): If-Match where the request has an etag to fill,
    // If-None-Match on a GET whose response carries one.
    const bool has_etag = route.response_etag_number != 0;
    const bool if_none_match = has_etag && route.http_method == "GET";
    if (!route.etag_path.empty()) params.Push(ComponentRef("parameters", kIfMatchParameter));
    if (if_none_match) params.Push(ComponentRef("parameters", kIfNoneMatchParameter));
    Json op = Json::Object();
    Json tags = Json::Array();
    tags.Push(route.method->service()->name());
    op["tags"] = std::move(tags);
    op["operationId"] = absl::StrCat(route.method->service()->name(), "_", route.method->name(),
                                     route.binding > 0 ? absl::StrCat("_", route.binding) : "");
    op["summary"] = route.method->name();
    std::string comment = Comments(route.method);
    op["description"] = absl::StrCat(comment, comment.empty() ? "" : "\n\n", "gRPC: `", route.grpc_method, "`");
    if (params.size() > 0) op["parameters"] = std::move(params);
    if (!route.body.empty()) {
      Json body = Json::Object();
      body["required"] = true;
      Json schema = route.body == "*" ? MessageRefSchema(input) : FieldSchema(route.body_field);
      body["content"]["application/json"]["schema"] = std::move(schema);
      op["requestBody"] = std::move(body);
    }
    Json& responses = op["responses"];
    Json& ok = responses["200"];
    ok["description"] = "OK";
    ok["content"]["application/json"]["schema"] = MessageRefSchema(route.method->output_type());
    if (has_etag) ok["headers"][kEtagHeader] = ComponentRef("headers", kEtagHeader);
    if (if_none_match) {
      Json& not_modified = responses["304"];
      not_modified["description"] = "Not Modified: the If-None-Match condition holds; no body.";
      not_modified["headers"][kEtagHeader] = ComponentRef("headers", kEtagHeader);
    }
    Json& error = responses["default"];
    error["description"] = "An error (google.rpc.Status)";
    error["content"]["application/json"]["schema"] = RefSchema(kStatusSchema);
    item[method] = std::move(op);
  }

  const RouteTable& routes_;
  std::set<const pb::Descriptor*> seen_messages_;
  std::set<const pb::EnumDescriptor*> seen_enums_;
  std::set<const pb::Descriptor*, Compare> pending_messages_;
  std::set<const pb::EnumDescriptor*, Compare> pending_enums_;
};

}  // namespace

std::string BuildOpenApi(const RouteTable& routes, const OpenApiInfo& info) { return Builder(routes).Build(info); }

}  // namespace clustergov::gateway
