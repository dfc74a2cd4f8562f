#pragma once

// The support service as a source of cluster indicators (common/indicators/indicator_source.h):
// GetClusterIndicators over a channel the caller makes once and reuses.

#include <memory>

#include "absl/time/time.h"
#include "common/indicators/indicator_source.h"

namespace grpc {
class Channel;
}

namespace clustergov::support {

// Calls carry a deadline of at most `timeout` (less when the incoming call has less left).
std::unique_ptr<indicators::IndicatorSource> NewSupportIndicatorSource(std::shared_ptr<grpc::Channel> channel,
                                                                       absl::Duration timeout = absl::Seconds(5));

}  // namespace clustergov::support
