#pragma once

// The OpenAPI 3.0 document of the gateway, generated from the same descriptors as its routes:
// one operation per route (path and query parameters, request body), component schemas for every
// message and enum they reach (with the proto comments as descriptions), the error schema
// (google.rpc.Status) and bearer authentication.

#include <string>

#include "services/gateway/routes.h"

namespace clustergov::gateway {

struct OpenApiInfo {
  std::string title = "clustergov REST API";
  std::string version = "v1";
  std::string description;
};

std::string BuildOpenApi(const RouteTable& routes, const OpenApiInfo& info);

}  // namespace clustergov::gateway
