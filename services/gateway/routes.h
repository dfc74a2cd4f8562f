#pragma once

// The routes of the gateway, read from a FileDescriptorSet: every RPC with a google.api.http
// option (and its additional_bindings) becomes a route. Nothing here is per-service code.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/gateway/path_template.h"

namespace google::protobuf {
class Descriptor;
class DescriptorPool;
class DynamicMessageFactory;
class FieldDescriptor;
class Message;
class MethodDescriptor;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace clustergov::gateway {

struct Route {
  std::string http_method;  // "GET", "POST", "PATCH", "PUT", "DELETE" or a custom kind
  PathTemplate path;
  // "" (no body), "*" (the whole request) or a top-level request field name.
  std::string body;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string service;      // "clustergov.clusters.v1.ClustersService"
  std::string grpc_method;  // "/clustergov.clusters.v1.ClustersService/GetCluster"
  int binding = 0;          // 0: the primary binding; n: additional_bindings[n-1]
  // Per path variable, the request fields from the top-level message down to the scalar.
  std::vector<std::vector<const google::protobuf::FieldDescriptor*>> variable_fields;
  const google::protobuf::FieldDescriptor* body_field = nullptr;  // when body names a field
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* response_prototype = nullptr;
  std::string request_type_url;   // "type.googleapis.com/<request type>"
  std::string response_type_url;  // "type.googleapis.com/<response type>"
  // The string field an If-Match header fills: the request's `etag`, or the body message's when
  // the path names that message (an update); empty: the route takes no If-Match.
  std::vector<const google::protobuf::FieldDescriptor*> etag_path;
  // The response's top-level string `etag` field number (0: none), echoed as the ETag header.
  int response_etag_number = 0;
};

struct RouteMatch {
  const Route* route = nullptr;              // null: no route for this method (see allowed_methods)
  std::vector<std::string> values;           // one per path variable
  std::vector<std::string> allowed_methods;  // methods the path has; empty: unknown path
};

class RouteTable {
 public:
  // Parses a serialized FileDescriptorSet (protoc --include_imports). INVALID_ARGUMENT naming the
  // method when an annotation is malformed (bad template, unknown field, ...).
  static absl::StatusOr<std::unique_ptr<RouteTable>> Load(const std::string& descriptor_set);
  static absl::StatusOr<std::unique_ptr<RouteTable>> LoadFile(const std::string& path);
  ~RouteTable();

  // The route for `method` and `path` (without the query). When several templates match, one with
  // a verb (":undelete") beats one without, then the one with more literal segments, then the one
  // declared first.
  RouteMatch Match(absl::string_view method, absl::string_view path) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }
  const google::protobuf::DescriptorPool& pool() const { return *pool_; }
  google::protobuf::DynamicMessageFactory& factory() const { return *factory_; }
  // Services that have at least one route, by full name.
  const std::vector<const google::protobuf::ServiceDescriptor*>& services() const { return services_; }

 private:
  RouteTable();

  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  std::vector<std::unique_ptr<Route>> routes_;
  std::vector<const google::protobuf::ServiceDescriptor*> services_;
};

// The fields named by a dotted path of proto field names (or JSON names), from `type` down;
// INVALID_ARGUMENT naming the path when a step is missing or goes through a repeated field.
absl::StatusOr<std::vector<const google::protobuf::FieldDescriptor*>> ResolveFieldPath(
    const google::protobuf::Descriptor* type, const std::vector<std::string>& path);

}  // namespace clustergov::gateway
