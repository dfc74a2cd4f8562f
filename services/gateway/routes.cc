#include "services/gateway/routes.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"

namespace clustergov::gateway {
namespace {

namespace pb = google::protobuf;

constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";

// Collects descriptor build errors into one message.
class CollectingErrors : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name, const pb::Message*, ErrorLocation,
                const std::string& message) override {
    absl::StrAppend(&errors_, errors_.empty() ? "" : "; ", filename, ": ", element_name, ": ", message);
  }
  const std::string& errors() const { return errors_; }

 private:
  std::string errors_;
};

// The method and path of one binding; false when the rule sets no pattern.
bool Pattern(const google::api::HttpRule& rule, std::string* method, std::string* path) {
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      *method = "GET";
      *path = rule.get();
      return true;
    case google::api::HttpRule::kPut:
      *method = "PUT";
      *path = rule.put();
      return true;
    case google::api::HttpRule::kPost:
      *method = "POST";
      *path = rule.post();
      return true;
    case google::api::HttpRule::kDelete:
      *method = "DELETE";
      *path = rule.delete_();
      return true;
    case google::api::HttpRule::kPatch:
      *method = "PATCH";
      *path = rule.patch();
      return true;
    case google::api::HttpRule::kCustom:
      *method = absl::AsciiStrToUpper(rule.custom().kind());
      *path = rule.custom().path();
      return true;
    default:
      return false;
  }
}

const pb::FieldDescriptor* FindField(const pb::Descriptor* type, const std::string& name) {
  const pb::FieldDescriptor* f = type->FindFieldByName(name);
  if (f == nullptr) f = type->FindFieldByCamelcaseName(name);
  if (f == nullptr) {
    for (int i = 0; i < type->field_count(); ++i) {
      if (type->field(i)->json_name() == name) return type->field(i);
    }
  }
  return f;
}

absl::StatusOr<std::unique_ptr<Route>> MakeRoute(const pb::MethodDescriptor* method, const google::api::HttpRule& rule,
                                                 int binding, pb::DynamicMessageFactory* factory) {
  auto route = std::make_unique<Route>();
  std::string path;
  std::string where = absl::StrCat(method->full_name(), binding == 0 ? "" : absl::StrCat(" binding ", binding));
  if (!Pattern(rule, &route->http_method, &path)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": google.api.http sets no method/path"));
  }
  auto parsed = PathTemplate::Parse(path);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", parsed.status().message()));
  route->path = std::move(*parsed);
  route->method = method;
  route->binding = binding;
  route->service = method->service()->full_name();
  route->grpc_method = absl::StrCat("/", route->service, "/", method->name());
  route->request_type_url = absl::StrCat(kTypeUrlPrefix, method->input_type()->full_name());
  route->response_type_url = absl::StrCat(kTypeUrlPrefix, method->output_type()->full_name());
  route->request_prototype = factory->GetPrototype(method->input_type());
  route->response_prototype = factory->GetPrototype(method->output_type());
  const pb::Descriptor* input = method->input_type();

  for (const auto& var : route->path.variables()) {
    auto fields = ResolveFieldPath(input, var.field_path);
    if (!fields.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", fields.status().message()));
    const pb::FieldDescriptor* leaf = fields->back();
    if (leaf->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": path variable ", absl::StrJoin(var.field_path, "."), " is not a scalar field"));
    }
    route->variable_fields.push_back(std::move(*fields));
  }

  route->body = rule.body();
  if (!route->body.empty() && route->body != "*") {
    route->body_field = input->FindFieldByName(route->body);
    if (route->body_field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": body field '", route->body, "' not in ", input->full_name()));
    }
  }
  if (!rule.response_body().empty()) {
    // Not transcoded yet: the route is skipped (with a warning), not the whole table.
    return absl::FailedPreconditionError(absl::StrCat(where, ": response_body is not supported; route skipped"));
  }

  // If-Match fills the request's etag, or that of the body message when the path names it, i.e.
  // it is an existing resource (UpdateCluster carries cluster.etag and binds cluster.name;
  // CreateCluster's cluster.etag is output-only).
  auto is_etag = [](const pb::FieldDescriptor* f) {
    return f != nullptr && f->type() == pb::FieldDescriptor::TYPE_STRING && !f->is_repeated();
  };
  bool path_names_body = false;
  for (const auto& fields : route->variable_fields) {
    path_names_body = path_names_body || (route->body_field != nullptr && fields.front() == route->body_field);
  }
  if (const auto* etag = input->FindFieldByName("etag"); is_etag(etag)) {
    route->etag_path = {etag};
  } else if (path_names_body && !route->body_field->is_repeated() &&
             route->body_field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    if (const auto* inner = route->body_field->message_type()->FindFieldByName("etag"); is_etag(inner)) {
      route->etag_path = {route->body_field, inner};
    }
  }
  if (const auto* etag = method->output_type()->FindFieldByName("etag"); is_etag(etag)) {
    route->response_etag_number = etag->number();
  }
  return route;
}

}  // namespace

absl::StatusOr<std::vector<const pb::FieldDescriptor*>> ResolveFieldPath(const pb::Descriptor* type,
                                                                         const std::vector<std::string>& path) {
  std::vector<const pb::FieldDescriptor*> fields;
  const pb::Descriptor* current = type;
  for (size_t i = 0; i < path.size(); ++i) {
    if (current == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", absl::StrJoin(path, "."), "': ", path[i - 1], " is not a message"));
    }
    const pb::FieldDescriptor* f = FindField(current, path[i]);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", absl::StrJoin(path, "."), "': no field '", path[i], "' in ", current->full_name()));
    }
    if (f->is_repeated() && i + 1 < path.size()) {
      return absl::InvalidArgumentError(absl::StrCat("'", absl::StrJoin(path, "."), "': ", path[i], " is repeated"));
    }
    fields.push_back(f);
    current = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE ? f->message_type() : nullptr;
  }
  return fields;
}

RouteTable::RouteTable() = default;
RouteTable::~RouteTable() = default;

absl::StatusOr<std::unique_ptr<RouteTable>> RouteTable::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("descriptor set ", path,
                                                   ": cannot read (build target clustergov_descriptors, or set "
                                                   "--descriptor_set)"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto table = Load(ss.str());
  if (!table.ok())
    return absl::InvalidArgumentError(absl::StrCat("descriptor set ", path, ": ", table.status().message()));
  return table;
}

absl::StatusOr<std::unique_ptr<RouteTable>> RouteTable::Load(const std::string& descriptor_set) {
  // Parsed with the generated classes: google.api.http is a registered extension of MethodOptions
  // (googleapis_proto is linked), so the rules come out typed.
  pb::FileDescriptorSet set;
  if (!set.ParseFromString(descriptor_set)) return absl::InvalidArgumentError("not a FileDescriptorSet");
  std::unique_ptr<RouteTable> table(new RouteTable());
  table->pool_ = std::make_unique<pb::DescriptorPool>();
  for (const auto& file : set.file()) {
    CollectingErrors errors;
    if (table->pool_->BuildFileCollectingErrors(file, &errors) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot build ", file.name(), ": ", errors.errors()));
    }
  }
  table->factory_ = std::make_unique<pb::DynamicMessageFactory>(table->pool_.get());
  table->factory_->SetDelegateToGeneratedFactory(false);

  for (const auto& file : set.file()) {
    for (const auto& service_proto : file.service()) {
      const pb::ServiceDescriptor* service = table->pool_->FindServiceByName(
          file.package().empty() ? service_proto.name() : absl::StrCat(file.package(), ".", service_proto.name()));
      if (service == nullptr) return absl::InternalError(absl::StrCat("service ", service_proto.name(), " not built"));
      bool any = false;
      for (const auto& method_proto : service_proto.method()) {
        if (!method_proto.options().HasExtension(google::api::http)) continue;
        const pb::MethodDescriptor* method = service->FindMethodByName(method_proto.name());
        if (method->client_streaming() || method->server_streaming()) {
          return absl::InvalidArgumentError(absl::StrCat(method->full_name(), ": streaming RPCs are not transcoded"));
        }
        const google::api::HttpRule& rule = method_proto.options().GetExtension(google::api::http);
        std::vector<const google::api::HttpRule*> rules = {&rule};
        for (const auto& extra : rule.additional_bindings()) rules.push_back(&extra);
        for (size_t i = 0; i < rules.size(); ++i) {
          if (i > 0 && !rules[i]->additional_bindings().empty()) {
            return absl::InvalidArgumentError(absl::StrCat(method->full_name(), ": additional_bindings must not nest"));
          }
          auto route = MakeRoute(method, *rules[i], static_cast<int>(i), table->factory_.get());
          if (absl::IsFailedPrecondition(route.status())) {
            log::Warn("route skipped", {{"reason", route.status().message()}});
            continue;
          }
          if (!route.ok()) return route.status();
          table->routes_.push_back(std::move(*route));
          any = true;
        }
      }
      if (any) table->services_.push_back(service);
    }
  }
  return table;
}

RouteMatch RouteTable::Match(absl::string_view method, absl::string_view path) const {
  RouteMatch result;
  std::vector<absl::string_view> parts = SplitPath(path);
  if (parts.empty()) return result;
  std::vector<std::string> values;
  bool best_has_verb = false;
  int best_literals = -1;
  // Does any template with a verb match? Then templates without one are ignored, so
  // "GET /v1/clusters/x:undelete" is a 405, not GetCluster("clusters/x:undelete").
  bool any_verb_match = false;
  for (const auto& r : routes_) {
    if (!r->path.verb().empty() && r->path.MatchParts(parts, nullptr)) {
      any_verb_match = true;
      break;
    }
  }
  for (const auto& r : routes_) {
    if (any_verb_match && r->path.verb().empty()) continue;
    bool same_method = r->http_method == method;
    // Values are decoded only for a candidate of the requested method.
    if (!r->path.MatchParts(parts, same_method ? &values : nullptr)) continue;
    if (std::find(result.allowed_methods.begin(), result.allowed_methods.end(), r->http_method) ==
        result.allowed_methods.end()) {
      result.allowed_methods.push_back(r->http_method);
    }
    if (!same_method) continue;
    bool has_verb = !r->path.verb().empty();
    if (result.route != nullptr &&
        (best_has_verb > has_verb || (best_has_verb == has_verb && best_literals >= r->path.literal_count()))) {
      continue;
    }
    result.route = r.get();
    result.values = std::move(values);
    values.clear();
    best_has_verb = has_verb;
    best_literals = r->path.literal_count();
  }
  return result;
}

}  // namespace clustergov::gateway
