#include "common/server/config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"

ABSL_FLAG(std::string, listen, "", "gRPC listen address host:port (default 0.0.0.0:<service port>)");
ABSL_FLAG(std::string, metrics_listen, "",
          "Prometheus /metrics listen address host:port (default 0.0.0.0:<service metrics port>); 'off' disables");
ABSL_FLAG(int, max_message_bytes, 4 * 1024 * 1024, "Largest gRPC message accepted or sent");
ABSL_FLAG(int, worker_threads, 32, "Worker threads running handlers (store, cache and outgoing calls)");
ABSL_FLAG(int, worker_queue, 4096, "Requests queued for workers before RESOURCE_EXHAUSTED");
ABSL_FLAG(int, pre_stop_seconds, 0, "On SIGTERM, seconds to report NOT_SERVING before draining");
ABSL_FLAG(int, drain_seconds, 10, "On SIGTERM, seconds in-flight calls get to finish");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis address host:port");
ABSL_FLAG(int, redis_pool, 16, "Redis connections kept open");
ABSL_FLAG(int, redis_timeout_ms, 100, "Redis connect and I/O timeout in milliseconds");
ABSL_FLAG(bool, cache, true, "Cache reads in Redis (false: every read goes to the store)");
ABSL_FLAG(int, cache_ttl_seconds, 300, "Cache entry lifetime (jittered ±20%)");
ABSL_FLAG(int, near_cache_ms, 1000,
          "Lifetime of the in-process near cache in front of Redis (0 disables); bounds how long a write "
          "made by another process can go unseen");
ABSL_FLAG(int64_t, event_stream_max_len, 1000000,
          "Entries kept in the service's event stream (approximate MAXLEN); more than any consumer group lags");
ABSL_FLAG(std::string, db, "",
          "The store: a SQLite database file (default ./data/<service>.db) or a PostgreSQL URL "
          "postgres://user:password@host:port/database");
ABSL_FLAG(std::string, db_synchronous, "full", "SQLite synchronous mode: full (fsync each commit) or normal");
ABSL_FLAG(int, db_readers, 4, "SQLite read connections");
ABSL_FLAG(int, db_pool, 8, "PostgreSQL connections kept by each replica (the pool's bound)");
ABSL_FLAG(int, db_statement_timeout_ms, 10000, "PostgreSQL statement timeout in milliseconds");
ABSL_FLAG(std::string, auth_issuer, "clustergov-dev", "Required JWT issuer (iss)");
ABSL_FLAG(std::string, auth_audience, "clustergov", "Required JWT audience (aud)");
ABSL_FLAG(std::string, auth_algorithm, "HS256", "JWT algorithm: HS256 (development), RS256 or ES256");
ABSL_FLAG(std::string, auth_hs256_secret, "", "HS256 secret (at least 32 bytes); development only");
ABSL_FLAG(std::string, auth_public_key_file, "", "PEM public key file for RS256/ES256 tokens");
ABSL_FLAG(std::string, page_token_secret, "",
          "Key signing page tokens; the same on every replica (default: derived from the auth key)");
ABSL_FLAG(int, deadline_interval_seconds, 60,
          "How often the service's scheduled deadline jobs run (expiries, overdue reports, stalled evaluations), "
          "on one replica at a time");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn or error");
ABSL_FLAG(std::string, service_token_file, "",
          "File holding the bearer token (role service) this service uses for its own calls to other services, "
          "re-read when it changes; default: minted from --auth_hs256_secret and re-minted before it expires");

namespace clustergov::server {
namespace {

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& flag, const std::string& value) {
  auto colon = value.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(value.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": expected host:port"));
  }
  return std::make_pair(value.substr(0, colon), port);
}

absl::Status CheckListen(const std::string& flag, const std::string& value) {
  auto colon = value.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": expected host:port"));
  }
  return absl::OkStatus();
}

absl::Status Positive(const char* flag, int value) {
  if (value <= 0) return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be positive, got ", value));
  return absl::OkStatus();
}

}  // namespace

void ParseFlags(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  // Environment first, so that the command line, parsed next, wins.
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    std::string env = absl::StrCat("CLUSTERGOV_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "error: environment %s=%s: %s\n", env.c_str(), value, error.c_str());
      std::exit(2);
    }
  }
  absl::ParseCommandLine(argc, argv);
}

absl::StatusOr<CommonConfig> CommonConfigFromFlags(const std::string& service_name, int default_port,
                                                   int default_metrics_port) {
  CommonConfig c;
  c.server.service_name = service_name;
  c.server.listen = absl::GetFlag(FLAGS_listen);
  if (c.server.listen.empty()) c.server.listen = absl::StrCat("0.0.0.0:", default_port);
  if (auto s = CheckListen("listen", c.server.listen); !s.ok()) return s;
  c.server.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (c.server.metrics_listen.empty()) c.server.metrics_listen = absl::StrCat("0.0.0.0:", default_metrics_port);
  if (c.server.metrics_listen == "off") {
    c.server.metrics_listen.clear();
  } else if (auto s = CheckListen("metrics_listen", c.server.metrics_listen); !s.ok()) {
    return s;
  }
  c.server.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  c.server.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  c.server.worker_queue = absl::GetFlag(FLAGS_worker_queue);
  for (auto s : {Positive("max_message_bytes", c.server.max_message_bytes),
                 Positive("worker_threads", c.server.worker_threads),
                 Positive("worker_queue", c.server.worker_queue), Positive("redis_pool", absl::GetFlag(FLAGS_redis_pool)),
                 Positive("redis_timeout_ms", absl::GetFlag(FLAGS_redis_timeout_ms)),
                 Positive("cache_ttl_seconds", absl::GetFlag(FLAGS_cache_ttl_seconds)),
                 Positive("db_readers", absl::GetFlag(FLAGS_db_readers)),
                 Positive("db_pool", absl::GetFlag(FLAGS_db_pool)),
                 Positive("db_statement_timeout_ms", absl::GetFlag(FLAGS_db_statement_timeout_ms)),
                 Positive("drain_seconds", absl::GetFlag(FLAGS_drain_seconds)),
                 Positive("deadline_interval_seconds", absl::GetFlag(FLAGS_deadline_interval_seconds))}) {
    if (!s.ok()) return s;
  }
  if (absl::GetFlag(FLAGS_pre_stop_seconds) < 0) {
    return absl::InvalidArgumentError("--pre_stop_seconds must not be negative");
  }
  c.server.pre_stop_delay = absl::Seconds(absl::GetFlag(FLAGS_pre_stop_seconds));
  c.server.drain_timeout = absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  c.deadline_interval = std::chrono::seconds(absl::GetFlag(FLAGS_deadline_interval_seconds));

  auto redis = ParseHostPort("redis", absl::GetFlag(FLAGS_redis));
  if (!redis.ok()) return redis.status();
  c.redis.host = redis->first;
  c.redis.port = redis->second;
  c.redis.pool_size = absl::GetFlag(FLAGS_redis_pool);
  c.redis.connect_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_redis_timeout_ms));
  c.redis.io_timeout = c.redis.connect_timeout;
  c.cache_enabled = absl::GetFlag(FLAGS_cache);
  c.cache_ttl = std::chrono::seconds(absl::GetFlag(FLAGS_cache_ttl_seconds));
  if (absl::GetFlag(FLAGS_near_cache_ms) < 0) return absl::InvalidArgumentError("--near_cache_ms must not be negative");
  c.near_cache_ttl = std::chrono::milliseconds(absl::GetFlag(FLAGS_near_cache_ms));
  c.event_stream_max_len = absl::GetFlag(FLAGS_event_stream_max_len);
  if (c.event_stream_max_len < 1000) {
    return absl::InvalidArgumentError("--event_stream_max_len must be at least 1000");
  }

  c.db.path = absl::GetFlag(FLAGS_db);
  if (c.db.path.empty()) c.db.path = absl::StrCat("./data/", service_name, ".db");
  std::string sync = absl::GetFlag(FLAGS_db_synchronous);
  if (sync != "full" && sync != "normal") {
    return absl::InvalidArgumentError(absl::StrCat("--db_synchronous=", sync, ": expected full or normal"));
  }
  c.db.synchronous_full = sync == "full";
  c.db.read_connections = absl::GetFlag(FLAGS_db_readers);
  c.pg.pool_size = absl::GetFlag(FLAGS_db_pool);
  c.pg.statement_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_db_statement_timeout_ms));

  c.auth.issuer = absl::GetFlag(FLAGS_auth_issuer);
  c.auth.audience = absl::GetFlag(FLAGS_auth_audience);
  c.auth.algorithm = absl::GetFlag(FLAGS_auth_algorithm);
  c.auth.hs256_secret = absl::GetFlag(FLAGS_auth_hs256_secret);
  std::string key_file = absl::GetFlag(FLAGS_auth_public_key_file);
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("--auth_public_key_file=", key_file, ": cannot read"));
    std::stringstream ss;
    ss << in.rdbuf();
    c.auth.public_key_pem = ss.str();
  }
  if (c.auth.hs256_secret.empty() && c.auth.public_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "no token key: set --auth_hs256_secret (development) or --auth_public_key_file with --auth_algorithm");
  }
  c.page_token_secret = absl::GetFlag(FLAGS_page_token_secret);
  if (c.page_token_secret.empty()) {
    c.page_token_secret = absl::StrCat("page-token:", c.auth.hs256_secret, c.auth.public_key_pem);
  }
  c.service_token_file = absl::GetFlag(FLAGS_service_token_file);
  c.log_level = absl::GetFlag(FLAGS_log_level);
  log::Level level;
  if (!log::ParseLevel(c.log_level, &level)) {
    return absl::InvalidArgumentError(absl::StrCat("--log_level=", c.log_level, ": expected debug, info, warn or error"));
  }
  return c;
}

}  // namespace clustergov::server
