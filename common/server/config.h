#pragma once

// Configuration shared by every service, read from flags (with CLUSTERGOV_<FLAG> environment
// overrides) into plain structs. Services add their own flags beside these.

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/auth.h"
#include "common/cache/redis.h"
#include "common/store/postgres.h"
#include "common/store/sqlite.h"

namespace clustergov::server {

// The most request or response metadata (HTTP/2 header list: headers or trailers) a server or a
// channel made by MakeChannel accepts. Beyond it, gRPC 1.51 fails the call and often the whole
// connection, other callers' calls on it included; at gRPC's default (8 KB) that was what a
// 10 KB bearer token did, before the authenticator ever saw it. With room for a token four times
// over its limit plus the other metadata, such a token reaches the authenticator and its caller
// alone gets UNAUTHENTICATED. The gateway, the one client that puts many callers' calls on one
// connection, accepts at most 16 KB of HTTP headers, so it stays below this. Error trailers stay
// far below it (grpc_status.h bounds what they echo).
inline constexpr int kMaxMetadataBytes = 32 * 1024;
static_assert(kMaxMetadataBytes >= 4 * kMaxBearerTokenBytes, "an oversized token must reach the authenticator");

struct ServerConfig {
  std::string service_name;                     // "clusters"
  std::string listen = "0.0.0.0:50051";         // gRPC
  std::string metrics_listen = "0.0.0.0:9464";  // Prometheus /metrics; empty disables
  int max_message_bytes = 4 * 1024 * 1024;
  int worker_threads = 32;
  int worker_queue = 4096;
  absl::Duration pre_stop_delay = absl::ZeroDuration();  // NOT_SERVING before draining
  absl::Duration drain_timeout = absl::Seconds(10);
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
};

struct CommonConfig {
  ServerConfig server;
  cache::RedisOptions redis;
  bool cache_enabled = true;
  std::chrono::seconds cache_ttl{300};
  std::chrono::milliseconds near_cache_ttl{1000};
  int64_t event_stream_max_len = 1000000;  // entries kept in the service's event stream (XADD MAXLEN ~)
  store::DatabaseOptions db;  // db.path: a SQLite file, or a PostgreSQL URL (then `pg` applies)
  store::PgOptions pg;
  AuthConfig auth;
  std::string page_token_secret;
  // The file holding the token this service presents when it calls others on its own behalf (work
  // that is not a caller's request); re-read when it changes. Empty: tokens minted from the HS256
  // secret (development) with `service_token_lifetime`, re-minted before they expire.
  std::string service_token_file;
  absl::Duration service_token_lifetime = absl::Hours(1);
  std::string log_level = "info";
  // How often the service's scheduled deadline jobs run (on one replica at a time).
  std::chrono::milliseconds deadline_interval{60000};
};

// Parses argv into absl flags. CLUSTERGOV_<UPPER_FLAG_NAME> environment variables set a flag's
// value unless the command line sets it. Exits with a clear message on an unknown or bad flag.
void ParseFlags(int argc, char** argv, const char* usage);

// Reads the common flags; ports default to the service's own. INVALID_ARGUMENT naming the flag
// when a value is wrong or a required one (an auth key) is missing.
absl::StatusOr<CommonConfig> CommonConfigFromFlags(const std::string& service_name, int default_port,
                                                   int default_metrics_port);

}  // namespace clustergov::server
