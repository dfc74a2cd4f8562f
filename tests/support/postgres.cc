#include "tests/support/postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace clustergov::testing {

namespace {

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Single-quoted for sh.
std::string Quote(const std::string& s) { return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'"); }

[[noreturn]] void Fail(const std::string& what, const std::string& output) {
  std::fprintf(stderr, "PostgresServer: %s\n%s\n", what.c_str(), output.c_str());
  std::abort();
}

}  // namespace

PostgresServer::PostgresServer()
    : data_(dir_.File("data")),
      bindir_(Env("CLUSTERGOV_PG_BINDIR", "/usr/lib/postgresql/15/bin")),
      as_root_(geteuid() == 0) {
  user_ = as_root_ ? Env("CLUSTERGOV_TEST_PG_USER", "nobody") : Env("USER", "postgres");
  if (access(Bin("initdb").c_str(), X_OK) != 0) {
    Fail(absl::StrCat(Bin("initdb"), " not found: install postgresql-15 (scripts/install-deps.sh)"), "");
  }
  std::string out;
  if (as_root_) {
    // The temporary folder is root's (0700): the server's user must reach and own its part.
    chmod(dir_.path().c_str(), 0755);
    if (RunCommand(absl::StrCat("install -d -o ", Quote(user_), " -m 0700 ", Quote(data_)), &out) != 0) {
      Fail("cannot make the data folder", out);
    }
  }
  if (RunCommand(AsServerUser(absl::StrCat(Bin("initdb"), " -D ", Quote(data_), " -U ", Quote(user_),
                                           " -A trust -E UTF8 --locale=C.UTF-8 --no-sync")),
                 &out) != 0) {
    Fail("initdb failed", out);
  }
  std::ofstream conf(data_ + "/postgresql.conf", std::ios::app);
  // fsync off: the tests crash the server, never the machine, so what reached the OS survives.
  // Commits stay synchronous: an acknowledged commit's WAL is written before the answer, as a
  // crash test needs (with synchronous_commit off an immediate shutdown loses the last commits).
  conf << "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n"
       << "full_page_writes = off\nmax_connections = 300\n";
  conf.close();
  port_ = FreePort();
  Start();
}

PostgresServer::~PostgresServer() { Stop(); }

std::string PostgresServer::Bin(const std::string& tool) const { return absl::StrCat(bindir_, "/", tool); }

std::string PostgresServer::AsServerUser(const std::string& command) const {
  return as_root_ ? absl::StrCat("runuser -u ", Quote(user_), " -- ", command) : command;
}

std::string PostgresServer::ConnectionString(const std::string& database) const {
  return absl::StrCat("postgres://", user_, "@127.0.0.1:", port_, "/", database);
}

void PostgresServer::Start() {
  std::string out;
  if (RunCommand(AsServerUser(absl::StrCat(Bin("pg_ctl"), " -D ", Quote(data_), " -l ", Quote(data_ + "/server.log"),
                                           " -o ", Quote(absl::StrCat("-p ", port_)), " -w -t 60 start")),
                 &out) != 0) {
    std::string log;
    RunCommand(absl::StrCat("tail -n 30 ", Quote(data_ + "/server.log")), &log);
    Fail("pg_ctl start failed", out + log);
  }
}

void PostgresServer::Stop() {
  std::string out;
  RunCommand(AsServerUser(absl::StrCat(Bin("pg_ctl"), " -D ", Quote(data_), " -m immediate -w stop")), &out);
}

std::string PostgresServer::Psql(const std::string& sql, const std::string& database) const {
  std::string out;
  RunCommand(absl::StrCat(Bin("psql"), " -X -A -t -v ON_ERROR_STOP=1 ", Quote(ConnectionString(database)), " -c ",
                          Quote(sql)),
             &out);
  return std::string(absl::StripAsciiWhitespace(out));
}

int PostgresServer::RunTool(const std::string& tool, const std::string& args, std::string* output) const {
  return RunCommand(absl::StrCat(Bin(tool), " ", args), output);
}

bool TestStoreIsPostgres() {
  const char* store = std::getenv("CLUSTERGOV_TEST_STORE");
  return store != nullptr && std::string(store) == "postgres";
}

PostgresServer& SharedPostgres() {
  // Lives until the process exits (after every test's services): stopped and removed then.
  static PostgresServer* shared = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    shared = new PostgresServer();
    std::atexit([] { delete shared; });
  });
  return *shared;
}

std::string TestStoreLocation(const std::string& sqlite_path) {
  if (!TestStoreIsPostgres()) return sqlite_path;
  static std::mutex mu;
  static std::map<std::string, std::string>* databases = new std::map<std::string, std::string>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = databases->find(sqlite_path);
  if (it == databases->end()) {
    const std::string name = absl::StrCat("test_", databases->size() + 1);
    SharedPostgres().Psql(absl::StrCat("CREATE DATABASE ", name));
    it = databases->emplace(sqlite_path, name).first;
  }
  return SharedPostgres().ConnectionString(it->second);
}

}  // namespace clustergov::testing
