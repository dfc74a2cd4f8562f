#pragma once

// The gateway's real route table, loaded once from the build's descriptor set.

#include "services/gateway/routes.h"
#include "tests/fuzz/fuzz_support.h"

namespace clustergov::fuzz {

inline const gateway::RouteTable& Routes() {
  static const gateway::RouteTable* routes = [] {
    auto loaded = gateway::RouteTable::LoadFile(CLUSTERGOV_DESCRIPTOR_SET);
    FUZZ_CHECK(loaded.ok(), loaded.status().ToString());
    return loaded->release();
  }();
  return *routes;
}

}  // namespace clustergov::fuzz
